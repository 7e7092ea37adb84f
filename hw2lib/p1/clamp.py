"""What clamping x0-hat to [-1, 1] does, measured on the page's model and sampler: the same noises
drawn with and without the clamp, read by the project CNN, and the share of colour values that
end at 0 or 255 (where trajectories that drift out of range saturate)."""
from __future__ import annotations

import numpy as np

from ..classifier import accuracy
from .model import grid_noise, sample
from .notebook import sweep_columns


def clamp_effect(unet, schedule, set_names, classifier, *, sampler: str, steps: int, w: float,
                 n_cols: int, per_digit: int = 2, seed: int = 0, known: dict | None = None):
    """One row per (set, clamp on/off): images, the project CNN's accuracy and the share of
    uint8 colour values at 0 or 255, on the first ``per_digit`` columns of each set's grid of
    ``n_cols`` (:func:`grid_noise` with ``seed + k`` for the k-th set, as the grids draw them).
    ``known``: ``{set: the grid's images}``, drawn with the clamp, reused for the clamped row, so
    only the unclamped one is drawn here."""
    import pandas as pd
    digits = np.repeat(np.arange(10), per_digit)
    cols = sweep_columns(n_cols, per_digit)
    rows = []
    for k, name in enumerate(set_names):
        noise = grid_noise(10 * n_cols, seed=seed + k, size=unet.config.sample_size)[cols]
        for clip in (True, False):
            if clip and known and name in known:
                imgs = known[name][cols]
            else:
                imgs, _ = sample(unet, schedule, name, digits, sampler=sampler, steps=steps, w=w,
                                 seed=seed + k, noise=noise, clip_x0=clip)
            rows.append({"set": name, "clamp": clip, "images": len(digits),
                         "accuracy": accuracy(classifier, imgs, digits),
                         "saturated": float(np.isin(imgs, (0, 255)).mean())})
    return pd.DataFrame(rows)


def clamp_text(table, names: dict, how: str) -> str:
    """The measured clamp paragraph: saturated colour values and accuracy with and without it."""
    from ..report.show import pct, pct_se, se
    on, off = table[table.clamp].set_index("set"), table[~table.clamp].set_index("set")
    sets = list(on.index)
    label = [names.get(s, s) for s in sets]
    n = int(table.images.iloc[0])
    reads = "; ".join(f"{lab} {pct_se(on.accuracy[s], n)} with it and "
                      f"{pct_se(off.accuracy[s], n)} without" for lab, s in zip(label, sets))
    apart = [lab for lab, s in zip(label, sets) if abs(on.accuracy[s] - off.accuracy[s])
             > 2 * float(np.hypot(se(on.accuracy[s], n), se(off.accuracy[s], n)))]
    verdict = (f"without it fewer {' and '.join(apart)} digits read as their digit" if apart else
               "the digits read as well either way with this sampler, within two standard "
               "errors")
    cols = "first column" if n // 10 == 1 else f"first {n // 10} columns"
    return (f"**The clamp, measured here.** The same {n} starting noises per set (the grids' "
            f"{cols} below), drawn with "
            f"{how} at this page's $w$ with and without clamping $\\hat x_0$ to $[-1, 1]$: "
            f"without it " + " and ".join(f"{pct(off.saturated[s])} of the {lab}"
                                          for lab, s in zip(label, sets))
            + " colour values end at 0 or 255 (saturated), against "
            + " and ".join(pct(on.saturated[s]) for s in sets) + " with it. The project CNN "
            f"reads {reads} (n = {n} each; where none is misread, the error rate is below "
            f"{300 / n:.0f}% at 95% confidence): the clamp keeps the colours in range, and "
            f"{verdict}.")

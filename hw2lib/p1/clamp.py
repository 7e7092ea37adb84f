"""What clamping x0-hat to [-1, 1] does, measured on the page's model and sampler: the same noises
drawn with and without the clamp, read by the project CNN, and the share of colour values that
end at 0 or 255 (where trajectories that drift out of range saturate)."""
from __future__ import annotations

import numpy as np

from ..classifier import accuracy
from .model import sample


def clamp_effect(unet, schedule, set_names, classifier, *, sampler: str, steps: int, w: float,
                 per_digit: int = 5, seed: int = 0):
    """One row per (set, clamp on/off): images, the project CNN's accuracy and the share of
    uint8 colour values at 0 or 255. Set k draws from seed ``seed + k``, as the grids do."""
    import pandas as pd
    digits = np.repeat(np.arange(10), per_digit)
    rows = []
    for k, name in enumerate(set_names):
        for clip in (True, False):
            imgs, _ = sample(unet, schedule, name, digits, sampler=sampler, steps=steps, w=w,
                             seed=seed + k, clip_x0=clip)
            rows.append({"set": name, "clamp": clip, "images": len(digits),
                         "accuracy": accuracy(classifier, imgs, digits),
                         "saturated": float(np.isin(imgs, (0, 255)).mean())})
    return pd.DataFrame(rows)


def clamp_text(table, names: dict, how: str) -> str:
    """The measured clamp paragraph: accuracy and saturated values with and without it."""
    from ..report.show import pct
    parts = []
    for name, g in table.groupby("set", sort=False):
        on, off = g[g.clamp].iloc[0], g[~g.clamp].iloc[0]
        parts.append(f"{names.get(name, name)}: {pct(on.accuracy, on.images)} with it, "
                     f"{pct(off.accuracy, off.images)} without; colour values at 0 or 255 "
                     f"{100 * on.saturated:.1f}% with it, {100 * off.saturated:.1f}% without")
    n = int(table.images.iloc[0])
    return (f"**The clamp, measured here.** The same {n} starting noises per set, drawn with "
            f"{how} at this page's $w$ with and without clamping $\\hat x_0$ to $[-1, 1]$, read "
            f"by the project CNN: " + "; ".join(parts) + ".")

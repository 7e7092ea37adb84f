"""P1's guidance sweep, stored or drawn: accuracy and look against the guidance weight w.

At the page's sampler the sweep is most of the P1 notebook's CPU time (100 images per set at
three new weights: about a minute on 2 cores) and, at that size, its standard errors are 1-2
points. So it is measured once per checkpoint on more images (``python -m hw2lib p1 sweep``,
500 per set by default: a quarter of an hour on one core) into
``<checkpoint>/guidance_sweep.json``, with how it was made; the notebook reads it when it was
measured with the page's sampler, steps, seed and data, and draws the sweep itself otherwise
(a GPU does in seconds). Either way the thumbnails are drawn on the page from the grid's noises.
"""
from __future__ import annotations

from pathlib import Path

from .curve import checkpoint_id, classifier_id, load_table, save_table
from .look import sweep_table
from .notebook import guidance_sweep, sweep_columns, sweep_text

SWEEP_FILE = "guidance_sweep.json"
WEIGHTS = (0.0, 2.0, 4.0, 6.0)


def measure(unet, schedule, set_names, model, refs: dict, *, ws=WEIGHTS, per_digit: int = 50,
            sampler: str = "ddpm", steps: int = 20, seed: int = 0, progress: bool = True):
    """:func:`hw2lib.p1.sweep_table` of ``per_digit`` images per digit, set and w: set k from
    :func:`hw2lib.p1.grid_noise` with ``seed + k`` (the same noises at every w)."""
    return _drawn(unet, schedule, set_names, model, refs, ws=ws, per_digit=per_digit,
                  n_cols=per_digit, sampler=sampler, steps=steps, seed=seed, progress=progress)[0]


def _drawn(unet, schedule, set_names, model, refs: dict, *, ws, per_digit: int, n_cols: int,
           sampler: str, steps: int, seed: int, known: dict | None = None,
           progress: bool = False):
    """(:func:`hw2lib.p1.sweep_table`, the images) of :func:`hw2lib.p1.guidance_sweep`."""
    acc, images = guidance_sweep(unet, schedule, set_names, list(ws), model, per_digit=per_digit,
                                 n_cols=n_cols, sampler=sampler, steps=steps, seed=seed,
                                 known=known, progress=progress)
    return sweep_table(acc, images, model, refs), images


def write(path, table, *, ckpt, classifier, command: str, sampler: str, steps: int, seed: int,
          per_digit: int, data: dict) -> Path:
    """The sweep and how it was made (checkpoint, digit CNN, sampler, seed, the data the look
    was measured against: ``{"mode", "data_seed"}``), in :func:`hw2lib.p1.curve.save_table`'s
    format."""
    return save_table(path, table, {
        "checkpoint": checkpoint_id(ckpt), "classifier": classifier_id(classifier),
        "command": command, "sampler": sampler, "steps": steps, "seed": seed,
        "per_digit": per_digit, "ws": sorted(float(w) for w in table.w.unique()), **data})


def stored(ckpt, classifier, *, ws, sampler: str, steps: int, seed: int, data: dict):
    """(table restricted to ``ws``, meta) of ``<ckpt>/guidance_sweep.json`` when it was measured
    on this checkpoint and digit CNN with this sampler, steps, seed and data at every w of
    ``ws``; None otherwise (no file, or another setting: the page then draws its own)."""
    path = Path(ckpt) / SWEEP_FILE
    found = load_table(path)
    if found is None:
        return None
    table, meta = found
    same = (meta["checkpoint"] == checkpoint_id(ckpt)
            and meta["classifier"] == classifier_id(classifier)
            and (meta["sampler"], meta["steps"], meta["seed"]) == (sampler, steps, seed)
            and all(meta.get(k) == v for k, v in data.items())
            and {float(w) for w in ws} <= set(meta["ws"]))
    if not same:
        return None
    return table[table.w.isin([float(w) for w in ws])].reset_index(drop=True), meta


def obtain(unet, schedule, set_names, model, refs: dict, *, ckpt, classifier, ws, sampler: str,
           steps: int, seed: int, data: dict, n_cols: int, per_digit: int, shown: int,
           known: dict | None = None, use_stored: bool = True):
    """What the notebook's sweep section shows: (sweep table, meta of the stored sweep or None
    when drawn here, {(w, set): the first ``shown`` images per digit of the grid's noises}).
    Drawn here: ``per_digit`` of the grid's ``n_cols`` noises per digit, reusing ``known``
    ``{(w, set): grid images}``; stored: only the thumbnails are drawn."""
    found = (stored(ckpt, classifier, ws=ws, sampler=sampler, steps=steps, seed=seed, data=data)
             if use_stored else None)
    if found is None:
        table, images = _drawn(unet, schedule, set_names, model, refs, ws=ws, per_digit=per_digit,
                               n_cols=n_cols, sampler=sampler, steps=steps, seed=seed,
                               known=known)
        few = sweep_columns(per_digit, min(shown, per_digit))
        return table, None, {k: v[few] for k, v in images.items()}
    _, images = guidance_sweep(unet, schedule, set_names, list(ws), model, per_digit=shown,
                               n_cols=n_cols, sampler=sampler, steps=steps, seed=seed, known=known)
    return found[0], found[1], images


def accuracies(table):
    """The sweep table's accuracy as rows w, columns sets (:func:`hw2lib.p1.sweep_text`'s
    input), sets in the table's order."""
    acc = table.pivot(index="w", columns="set", values="accuracy")
    return acc[list(dict.fromkeys(table.set))]


def text(table, meta: dict | None, guidance: float, names: dict, scores=None) -> str:
    """The guidance paragraph (:func:`hw2lib.p1.sweep_text`), after where the numbers come from:
    the stored measurement (its command, CPU and date) or this run. With the grids' score table
    ``scores`` (:func:`hw2lib.p1.score_table`), a stored sweep's row at the grids' w is set
    beside the grids' own accuracy, the two being draws of different sizes from other noises."""
    from ..report.show import pct_se
    n = int(table.images.iloc[0])

    def short(p: float, m: int) -> str:  # "99.0% ± 0.4", or "100.0% (no error)"
        return pct_se(p, m) + (" (no error)" if p == 1 else "")
    where = (f"The sweep below was measured once for this checkpoint on {n:,} images per set "
             f"and w (`{meta['command']}`, on an {meta['cpu']}, {meta['made'][:10]}, with this "
             f"page's sampler and seed); the thumbnails are drawn here from the grid's noises."
             if meta else "")
    at = table[table.w == float(guidance)]
    if meta and scores is not None and len(at):
        cnn = scores[scores.classifier == "project CNN"].set_index("digit set")
        mine = [(names.get(r.set, r.set), r) for _, r in at.iterrows()]
        mine = [(label, r) for label, r in mine if label in cnn.index]
        if mine:
            m = int(cnn.loc[mine[0][0]].images)
            where += (f" At the grids' w = {guidance:g} these {n:,} per set read "
                      + " and ".join(f"{label} {short(r.accuracy, int(r.images))}"
                                     for label, r in mine)
                      + f"; the grids' own {m:,} per set, from other noises, read "
                      + " and ".join(short(cnn.loc[label].accuracy, int(cnn.loc[label].images))
                                     for label, _ in mine)
                      + ": the larger draw is the closer estimate.")
    return (where + "\n\n" if where else "") + sweep_text(accuracies(table), guidance, n, names)

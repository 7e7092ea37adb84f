"""Textual inversion trained again from other seeds: how much a learned token's gain over its
initialisation word depends on the training draw.

Textual inversion is a short optimisation (300 steps here) from one draw of batches, noises and
time steps, and a token's score can move between runs by more than the standard error of one
run's images. ``python -m hw2lib p3 replicates RUN ...`` (each RUN a ``train ti --seed N``
folder of one recipe) scores every run at the P3.2 notebook's settings into
``<ti checkpoint>/replicates.json``; the notebook reads it and says how far the runs spread.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

FILE = "replicates.json"
# the parts of a run's manifest that make its recipe: every run of a replicate table shares them
RECIPE_KEYS = ("relative", "t_min", "snr_gamma", "target_w", "guidance")


def _manifest(run) -> dict:
    from ..files import read_json
    return read_json(Path(run) / "manifest.json", what="a textual-inversion run's manifest",
                     hint="train it first (python -m hw2lib train ti --seed N --out RUN)")


def recipe(run) -> dict:
    """A textual-inversion run's recipe (its manifest's training config without the seed, the
    loss options and the concepts), read from ``run/manifest.json``."""
    m = _manifest(run)
    cfg = {k: v for k, v in m.get("train_config", {}).items()
           if k not in ("seed", "save_every", "max_minutes", "precision")}
    return {"train_config": cfg, "concepts": m.get("concepts"),
            **{k: m.get(k) for k in RECIPE_KEYS if m.get(k) is not None}}


def train_seed(run) -> int:
    return int(_manifest(run).get("train_config", {}).get("seed", 0))


def check_same_recipe(runs) -> None:
    """ValueError naming the first run whose recipe differs from the first run's."""
    first = recipe(runs[0])
    for run in runs[1:]:
        if recipe(run) != first:
            raise ValueError(f"{run} was trained with another recipe than {runs[0]} "
                             "(a replicate table compares seeds of one recipe)")


def measure(runs, *, t2i_ckpt, clip_ckpt, n: int = 32, seed: int = 0, w: float | None = None,
            steps: int = 25, device: str = "cpu", cache_dir=None):
    """One row per (run, token): the learned token's image score, its initialisation word's on
    the same noises, their mean paired difference and its SE (:func:`~.notebook.concept_table`
    at the notebook's settings: ``n`` generations from ``seed``, DDIM-``steps``, guidance ``w``
    (None: the scene model's))."""
    import pandas as pd

    from . import setups
    from .notebook import concept_table, draw
    check_same_recipe(runs)
    rows = []
    for run in runs:
        s = setups.load("embedded", device=device, t2i_ckpt=t2i_ckpt, ti_ckpt=run,
                        clip_ckpt=clip_ckpt, cache_dir=cache_dir)
        prompts = [p for t in s.tokens for p in (f"a {t}", s.init_prompts[t])]
        images = draw(s.model, prompts, n=n, seed=seed, steps=steps,
                      w=s.model.sampling.w if w is None else w)
        table = concept_table(s.judge, images, s.init_prompts)
        trained_from = train_seed(run)
        for _, r in table[table.which == "learned token"].iterrows():
            rows.append({"run": str(run), "train seed": trained_from, "concept": r.concept,
                         "image score": r["image score"], "minus init word": r["minus init word"],
                         "SE": r.SE, "images": n})
    return pd.DataFrame(rows)


def write(path, table, *, runs, command: str, n: int, seed: int, steps: int, w) -> Path:
    """The table and how it was made, with the runs' shared :func:`recipe`."""
    from ..p1.curve import save_table
    return save_table(path, table, {"command": command, "n": n, "seed": seed, "steps": steps,
                                    "w": w, "recipe": recipe(runs[0])})


def read(ti_ckpt):
    """(table, meta) of ``<ti_ckpt>/replicates.json``, or None when there is none."""
    from ..p1.curve import load_table
    return load_table(Path(ti_ckpt) / FILE)


def text(table, meta: dict, committed_seed: int) -> str:
    """The paragraph: each token's gain over its init word in every run, and whether the runs
    spread by more than one run's standard error allows (the range against twice the mean SE)."""
    from ..report.show import signed, spoken_list
    seeds = sorted(table["train seed"].unique())
    parts, verdicts = [], []
    for token, rows in table.groupby("concept", sort=False):
        rows = rows.sort_values("train seed")
        d, se = rows["minus init word"].to_numpy(), rows.SE.to_numpy()
        parts.append(f"`{token}` " + ", ".join(signed(v, "{:+.1f}") for v in d))
        spread, typical = float(d.max() - d.min()), float(np.mean(se))
        verdicts.append(
            f"`{token}`'s gain ranges over {spread:.1f} points, "
            + (f"more than twice its typical standard error ({typical:.1f}): one training does "
               f"not settle whether `{token}` beats its initialisation word, and this page's "
               f"tokens are one draw of that spread" if spread > 2 * typical else
               f"within twice its typical standard error ({typical:.1f}): stable from run to run"))
    return (f"**Trained again.** The same recipe from seeds {spoken_list(seeds)} (seed {committed_seed} is "
            f"the tokens used on this page; {int(meta['n'])} generations per prompt at this "
            f"page's settings, measured once on an {meta['cpu']}, {meta['made'][:10]}) gives "
            f"these paired differences to the initialisation word, seed by seed: "
            + "; ".join(parts) + ". " + "; ".join(verdicts) + ".")


def paragraph(ti_ckpt) -> str:
    """:func:`text` for the tokens of ``ti_ckpt`` when its folder holds a replicate table of its
    own recipe that includes its seed; a sentence saying so when the table is of another recipe;
    "" when there is none."""
    found = read(ti_ckpt)
    if found is None:
        return ""
    table, meta = found
    mine = train_seed(ti_ckpt)
    if meta.get("recipe") != recipe(ti_ckpt) or mine not in set(table["train seed"]):
        return (f"**Trained again:** `{Path(ti_ckpt).name}/{FILE}` was measured on another "
                "recipe or without these tokens' seed; rerun `python -m hw2lib p3 replicates`.")
    return text(table, meta, mine)

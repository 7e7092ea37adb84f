"""P1's training recipes compared at one budget: each run's checkpoint drawn with one sampler
setting and scored like the sampler curve (accuracy and look, :func:`hw2lib.p1.curve.measure`),
beside what its manifest says of the recipe (steps, batch, learning rate, loss weighting, time).

``python -m hw2lib p1 ablation RUN [RUN ...]`` writes ``checkpoints/p1_recipes.json``; the
appendix shows it. The runs themselves are ``train p1 --steps N --out RUN [--snr-gamma 5 ...]``:
the same budget for every choice, or the table says otherwise.
"""
from __future__ import annotations

from pathlib import Path

from .. import look

ABLATION_FILE = "checkpoints/p1_recipes.json"


def recipe(ckpt) -> dict:
    """What the run's manifest says of its recipe and cost."""
    from ..files import read_json
    man = read_json(Path(ckpt) / "manifest.json", what="a P1 training run's manifest",
                    hint="`python -m hw2lib train p1 --out RUN` writes it")
    tc = man.get("train_config", {})
    gamma = tc.get("snr_gamma")
    return {"run": Path(ckpt).name, "train steps": man.get("steps_done"),
            "batch": tc.get("batch_size"), "lr": tc.get("lr"),
            "loss": f"Min-SNR, γ = {gamma:g}" if gamma else "plain ε loss",
            "guidance null": tc.get("guidance_null", "shared"),
            "train minutes": (man.get("wall_seconds") or 0) / 60}


def measure(ckpts, model, refs: dict, *, sampler: str = "ddim", steps: int = 10,
            w: float = 4.0, per_digit: int = 20, seed: int = 0, device: str = "cpu",
            progress: bool = True):
    """One row per (run, set): :func:`recipe` and the curve's scores of one setting."""
    import pandas as pd

    from . import curve
    from .model import load
    rows = []
    for ckpt in ckpts:
        unet, schedule, cfg = load(ckpt, device=device)
        t = curve.measure(unet, schedule, cfg["sets"], model, refs, settings=[(sampler, steps)],
                          per_digit=per_digit, w=w, seed=seed, progress=progress)
        rows.append(t.assign(**recipe(ckpt)))
    return pd.concat(rows, ignore_index=True)


def write(path, table, *, command: str, sampler: str, steps: int, w: float, per_digit: int,
          seed: int) -> Path:
    """The table and how it was made, in the sampler curve's file format."""
    from .curve import save_table
    return save_table(path, table, {"command": command, "sampler": sampler, "steps": steps,
                                    "w": w, "per_digit": per_digit, "seed": seed})


def read(path=ABLATION_FILE):
    """(table, meta), or None when the file is absent."""
    from .curve import load_table
    return load_table(path)


FORMATS = {**look.FORMATS, "lr": "{:g}", "train minutes": "{:.0f}"}


def view(table):
    """Per run, both sets pooled (as the curve pools them): the recipe and its scores."""
    import pandas as pd

    from .curve import summary
    cols = ["run", "loss", "guidance null", "train steps", "batch", "lr", "train minutes"]
    runs = table.groupby("run", sort=False)[cols[1:]].first().reset_index()
    scores = [summary(g).assign(run=run) for run, g in table.groupby("run", sort=False)]
    s = pd.concat(scores, ignore_index=True)[["run", "images", "accuracy", "SE", "colour", "kid"]]
    return (runs.merge(s, on="run")
            .rename(columns={"colour": look.COLOUR_RATIO, "kid": look.KID_RATIO}))


def text(table, meta: dict) -> str:
    """What the table measured, computed: the setting, the sample size, and at each budget with
    several runs the most accurate one against each other (difference and its standard error,
    the runs' samples being independent)."""
    from .notebook import sampler_label
    v = view(table)
    budgets = sorted(set(v["train steps"]))
    same = (f"the same budget, {budgets[0]:,} steps of {int(v.batch.iloc[0])} digits"
            if len(budgets) == 1 and v.batch.nunique() == 1 else
            f"{', '.join(f'{b:,}' for b in budgets)} steps (runs with the same number of steps "
            f"compare recipes at an equal budget)")
    out = (f"Each run trained from scratch for {same}; each drawn with "
           f"{sampler_label(meta['sampler'], meta['steps'])} at one guidance weight for all, "
           f"$w = {meta['w']:g}$ (a recipe is judged against the others at the same $w$; the "
           f"P1 section draws at the $w$ its own rule picks), "
           f"{10 * meta['per_digit']} images per set from the same noises (on an "
           f"{meta['cpu']}, {meta['made'][:10]}). The look ratios are against floors measured "
           f"at that size: compare them with each other, not with ratios from larger draws (the "
           f"floor narrows as n grows, so the same samples give a larger KID ratio at 500 per "
           f"set).")
    if v["guidance null"].nunique() > 1:
        out += (" The guidance null is the label guidance dropout puts in a label's place: one "
                "shared label, or one per set, with which guidance amplifies the digit and not "
                "what tells the sets apart.")
    for steps, g in v.groupby("train steps"):
        if len(g) < 2:
            continue
        best = g.loc[g.accuracy.idxmax()]
        tv, kid = look.COLOUR_RATIO, look.KID_RATIO
        others = "; ".join(
            f"{r['run']} ({_recipe(r)}) {100 * r.accuracy:.1f}%, a difference of "
            f"{100 * (best.accuracy - r.accuracy):+.1f} points (SE "
            f"{100 * (best.SE ** 2 + r.SE ** 2) ** 0.5:.1f}); on the look, {best['run']} against "
            f"{r['run']}: colour TV {look.ratio_cell(best[tv])} against "
            f"{look.ratio_cell(r[tv])}, KID {look.ratio_cell(best[kid])} against "
            f"{look.ratio_cell(r[kid])}, {_closer(best, r)}"
            for _, r in g.drop(best.name).iterrows())
        out += (f" At {steps:,} steps, {best['run']} ({_recipe(best)}) reads "
                f"{100 * best.accuracy:.1f}% ± {100 * best.SE:.1f} (n = {int(best.images):,}) "
                f"against {others}.")
    alone = [g.iloc[0] for _, g in v.groupby("train steps") if len(g) == 1]
    if alone:
        out += (" Alone at their number of steps: " + "; ".join(
            f"{r['run']} ({_recipe(r)}, {int(r['train steps']):,} steps) "
            f"{100 * r.accuracy:.1f}% ± {100 * r.SE:.1f}" for r in alone)
            + ". With no run of the same budget beside them, they show how far a longer run "
              "got, not which recipe is better.")
    return out


def _closer(best, other) -> str:
    """Which of two runs the look statistics put closer to the data (lower ratios)."""
    wins = sum(bool(other[c] < best[c]) for c in (look.COLOUR_RATIO, look.KID_RATIO))
    return (f"so {other['run']} looks the closer to the data on both" if wins == 2 else
            f"so {best['run']} also looks the closer to the data on both" if wins == 0 else
            "so each looks the closer on one")


def _recipe(row) -> str:
    """A run's loss and guidance null, as the comparison names it."""
    return f"{row['loss']}, {row['guidance null']} null"

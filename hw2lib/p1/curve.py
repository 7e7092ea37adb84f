"""P1's quality against the sampler's cost: accuracy and look of the same starting noises drawn
with each sampler setting (DDIM and DPM-Solver++ at several step counts, DDPM at T), at one
guidance weight, on the committed checkpoint.

The curve is measured once per checkpoint (``python -m hw2lib p1 curve``, minutes to an hour on
a CPU, so never during ``make report``) into ``<checkpoint>/sampler_curve.json``, with how it
was made; the P1 notebook draws it from there and refuses a file measured on another
checkpoint. Model evaluations per image: one per step, two with guidance (the conditional and
unconditional predictions, one doubled batch).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .. import look

# (sampler, steps): DDIM 5-100, DPM-Solver++(2M) 5-25, and DDPM's ancestral sampler at T
SETTINGS = (("ddim", 5), ("ddim", 10), ("ddim", 20), ("ddim", 50), ("ddim", 100),
            ("dpmpp", 5), ("dpmpp", 10), ("dpmpp", 15), ("dpmpp", 25), ("ddpm", 1000))
CURVE_FILE = "sampler_curve.json"
NAMES = {"ddim": "DDIM (η = 0)", "dpmpp": "DPM-Solver++(2M)",
         "ddpm": "DDPM (ancestral; strided below 1000 steps)",
         "ddim-clipped-eps": "DDIM, ε from the clamped x̂₀"}


def evaluations(steps: int, w: float) -> int:
    """UNet evaluations per image: one per step, two under classifier-free guidance."""
    return steps * (2 if w else 1)


def checkpoint_id(ckpt) -> dict:
    """What identifies the checkpoint a curve was measured on: its manifest's date and commit
    and the weights file's size."""
    ckpt = Path(ckpt)
    man = json.loads((ckpt / "manifest.json").read_text()) if (ckpt / "manifest.json").exists() else {}
    weights = ckpt / "model.safetensors"
    return {"made": man.get("made"), "commit": man.get("commit"),
            "weights_bytes": weights.stat().st_size if weights.exists() else None}


def classifier_id(classifier_ckpt) -> str:
    """What identifies the digit CNN that scored a curve: a hash of its weights file."""
    import hashlib
    return hashlib.sha256((Path(classifier_ckpt) / "model.safetensors").read_bytes()).hexdigest()[:16]


def merge(old, new):
    """``old``'s rows with ``new``'s added; a setting measured in both keeps ``new``'s rows."""
    import pandas as pd
    key = ["sampler", "steps"]
    again = old.set_index(key).index.isin(new.set_index(key).index)
    return pd.concat([old[~again], new], ignore_index=True)


def measure(unet, schedule, set_names, model, refs: dict, *, settings=SETTINGS,
            per_digit: int = 20, w: float = 4.0, seed: int = 0, progress: bool = True):
    """One row per (setting, set): accuracy of the project CNN ``model`` with its SE, the look
    statistics against ``refs`` (:func:`hw2lib.p1.look_references`), wall seconds. Set k draws
    from seed ``seed + k`` with every setting (the same starting noises)."""
    import pandas as pd
    from tqdm.auto import tqdm

    from ..classifier import accuracy
    from ..report.show import se
    from .look import look_row
    from .model import STORED_BATCH, sample
    digits = np.repeat(np.arange(10), per_digit)
    rows = []
    for sampler, steps in tqdm(list(settings), desc="sampler curve", disable=not progress):
        for k, name in enumerate(set_names):
            t0 = time.perf_counter()
            imgs, _ = sample(unet, schedule, name, digits, sampler=sampler, steps=steps, w=w,
                             seed=seed + k, batch_size=STORED_BATCH)
            wall = time.perf_counter() - t0
            acc = accuracy(model, imgs, digits)
            rows.append({"sampler": sampler, "steps": steps, "evaluations": evaluations(steps, w),
                         "set": name, "images": len(digits), "accuracy": acc,
                         "SE": se(acc, len(digits)), **look_row(model, imgs, refs[name]),
                         "seconds": wall})
    return pd.DataFrame(rows)


def save_table(path, table, meta: dict) -> Path:
    """``{"meta": meta with the CPU and the date, "rows": table}`` as JSON, written atomically:
    the file format of the sampler curve and of the recipe ablation (:mod:`.ablation`)."""
    from ..files import write_text_atomic
    from ..precision import cpu_info
    meta = {**meta, "cpu": cpu_info().get("cpu"), "made": time.strftime("%Y-%m-%d %H:%M:%S")}
    path = Path(path)
    write_text_atomic(path, json.dumps({"meta": meta, "rows": table.to_dict("records")},
                                       indent=1))
    return path


def load_table(path):
    """(table, meta) of a file :func:`save_table` wrote, or None when there is none."""
    import pandas as pd
    path = Path(path)
    if not path.exists():
        return None
    d = json.loads(path.read_text())
    return pd.DataFrame(d["rows"]), d["meta"]


def write(path, table, *, ckpt, command: str, w: float, per_digit: int, seed: int,
          classifier=None) -> Path:
    """The curve and how it was made (checkpoint, the digit CNN that scored it, command, CPU,
    date) as JSON."""
    return save_table(path, table, {
        "checkpoint": checkpoint_id(ckpt), "command": command, "w": w, "per_digit": per_digit,
        "seed": seed, "classifier": classifier_id(classifier) if classifier else None})


def read(ckpt, classifier=None):
    """(table, meta) of ``<ckpt>/sampler_curve.json``, or None when there is none. A curve
    measured on another checkpoint (its manifest or weights changed), or scored by another
    digit CNN than ``classifier`` (when given), raises ValueError."""
    path = Path(ckpt) / CURVE_FILE
    found = load_table(path)
    if found is None:
        return None
    meta = found[1]
    again = f"measure it again with `{meta['command']}`"
    if meta["checkpoint"] != checkpoint_id(ckpt):
        raise ValueError(f"{path} was measured on another checkpoint than {ckpt}: {again}")
    if classifier is not None and meta.get("classifier") != classifier_id(classifier):
        raise ValueError(f"{path} was scored by another digit CNN than {classifier}: {again}")
    return found


def figure(table, names: dict | None = None, *, within: float = 2.0):
    """Two panels against UNet evaluations per image (log axis): accuracy (± SE) and the
    colour-TV ratio to its floor, one line per sampler and set (``names``: the sets' names on
    the page)."""
    import matplotlib.pyplot as plt
    names = names or {}
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
    markers = {"ddim": "o", "dpmpp": "s", "ddpm": "^", "ddim-clipped-eps": "D"}
    for (sampler, name), g in table.groupby(["sampler", "set"], sort=False):
        g = g.sort_values("evaluations")
        style = dict(marker=markers.get(sampler, "o"), linestyle="-" if name == "mnistm" else "--",
                     label=f"{NAMES.get(sampler, sampler)}, {names.get(name, name)}")
        axes[0].errorbar(g.evaluations, 100 * g.accuracy, yerr=100 * g.SE, capsize=2, **style)
        axes[1].plot(g.evaluations, g["colour TV / floor"], **style)
    axes[1].axhline(within, color="grey", linestyle=":", linewidth=1)
    axes[1].axhline(1, color="grey", linewidth=1)
    for ax, ylabel, title in ((axes[0], "project CNN accuracy (%)", "Readable as the digit"),
                              (axes[1], "colour TV / floor", "Looks like the data")):
        ax.set_xscale("log")
        ax.set(xlabel="UNet evaluations per image", ylabel=ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7.5, frameon=False,
               bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    return fig


def summary(table) -> "object":
    """Per setting, both sets pooled: accuracy (mean of the sets), its SE over all images, the
    mean colour-TV ratio and KID ratio, and seconds per 100 images."""
    from ..look import KID_RATIO
    from ..report.show import se
    g = table.groupby(["sampler", "steps"], sort=False)
    out = g.agg(evaluations=("evaluations", "first"), images=("images", "sum"),
                accuracy=("accuracy", "mean"), colour=("colour TV / floor", "mean"),
                kid=(KID_RATIO, "mean"), seconds=("seconds", "sum")).reset_index()
    out["SE"] = [se(p, n) for p, n in zip(out.accuracy, out.images)]
    out["s per 100"] = 100 * out.seconds / out.images
    return out


FORMATS = {**look.FORMATS, "wall s per 100": "{:.1f}"}


def view(table):
    """The page's table of the curve: :func:`summary` per setting, named for the reader
    (show.table formats: :data:`FORMATS`), grouped by sampler in :data:`NAMES`' order."""
    order = {k: i for i, k in enumerate(NAMES)}
    s = summary(table)
    s = (s.assign(_o=s.sampler.map(lambda k: order.get(k, len(order))))
         .sort_values(["_o", "steps"], kind="stable").reset_index(drop=True)
         .assign(sampler=lambda d: d.sampler.map(lambda k: NAMES.get(k, k))))
    return s[["sampler", "steps", "evaluations", "images", "accuracy", "SE", "colour", "kid",
              "s per 100"]].rename(columns={"colour": "colour TV / floor",
                                            "kid": "KID / (floor + 2 sd)",
                                            "s per 100": "wall s per 100"})


def _solver_text(s) -> str:
    """Why DPM-Solver++ reads below DDIM at its most steps, from :func:`summary` rows ``s``:
    nothing when it does not (within two SEs of DDIM's best). With the page's clamp the solver's
    data prediction is clamped whole (diffusers' thresholding), so its first-order step is DDIM's
    with eps re-derived from the clamped x0-hat (``tests/test_dpm_solver.py``); the curve's
    ``ddim-clipped-eps`` row at the solver's step count, when there is one, is the check."""
    solver, ddim = s[s.sampler == "dpmpp"], s[s.sampler == "ddim"]
    if not len(solver) or not len(ddim):
        return ""
    last, top = solver.loc[solver.steps.idxmax()], ddim.loc[ddim.accuracy.idxmax()]
    if last.accuracy >= top.accuracy - 2 * float(np.hypot(last.SE, top.SE)):
        return ""
    out = (f"DPM-Solver++(2M) with {last.steps} steps reads {100 * last.accuracy:.1f}% ± "
           f"{100 * last.SE:.1f}, below DDIM's best ({100 * top.accuracy:.1f}% at {top.steps} "
           f"steps), although both solve the same ODE. They do not clamp alike: the solver clamps "
           f"its whole data prediction $\\hat x_0$ (diffusers' thresholding), and with that clamp "
           f"its first-order step is exactly DDIM's step with $\\epsilon$ re-derived from the "
           f"clamped $\\hat x_0$ (tested), not the page's DDIM step, which keeps the model's "
           f"$\\epsilon$. ")
    twin = s[(s.sampler == "ddim-clipped-eps") & (s.steps == last.steps)]
    if len(twin):
        t = twin.iloc[0]
        out += (f"That DDIM variant at {t.steps} steps reads {100 * t.accuracy:.1f}% ± "
                f"{100 * t.SE:.1f} from the same noises, "
                + ("as the solver does: more solver steps converge to the clamped-$\\epsilon$ "
                   "sampler's solutions, not to DDIM's. "
                   if abs(t.accuracy - last.accuracy) <= 2 * float(np.hypot(t.SE, last.SE)) else
                   f"not what the solver reads: the clamp does not explain the gap. "))
    return out


def text(table, meta: dict, *, sampler: str, steps: int) -> str:
    """What the curve says, computed: the best setting by the P1 rule (accuracy within one SE
    of the best, then the best colour ratio) and where the page's own sampler stands."""
    s = summary(table)
    full = s[s.images == s.images.mode().iloc[0]]  # the rule compares equal sample sizes
    best = full.loc[full.accuracy.idxmax()]
    from ..report.show import rule_se
    cand = full[full.accuracy >= best.accuracy - rule_se(best.accuracy, int(best.images)) - 1e-12]
    pick = cand.loc[cand.colour.idxmin()]
    ddim = s[s.sampler == "ddim"].sort_values("steps")

    def name(r):
        return f"{NAMES.get(r.sampler, r.sampler)} with {r.steps} steps"

    def at(r):
        acc = (f"{100 * r.accuracy:.1f}% (no error, n = {r.images:,})" if r.SE == 0 else
               f"{100 * r.accuracy:.1f}% ± {100 * r.SE:.1f} (n = {r.images:,})")
        return (f"{acc}, colour TV {r.colour:.1f}× its floor, KID {r.kid:.1f}× its floor's "
                f"upper level")
    per_set = table.groupby(["sampler", "steps"], sort=False)["images"].first()
    common = int(per_set.mode().iloc[0])
    fewer = " and ".join(f"{v} with the {n_steps:,}-step {NAMES.get(k, k).split(' (')[0]}"
                      for (k, n_steps), v in per_set.items() if v != common)
    out = (f"Measured once for this checkpoint (`python -m hw2lib p1 curve`), not in this run, "
           f"on {common} images per set and setting"
           + (f", {fewer}," if fewer else "")
           + f" at $w = {meta['w']:g}$, the same starting noises for every setting "
           f"(on an {meta['cpu']}, {meta['made'][:10]}). ")
    if len(ddim) > 2:
        steps_ = ", ".join(str(v) for v in ddim.steps)
        accs = ", ".join(f"{100 * v:.1f}%" for v in ddim.accuracy)
        cols = ", ".join(f"{v:.1f}×" for v in ddim.colour)
        top = ddim.loc[ddim.accuracy.idxmax()]
        more = ddim[ddim.steps > top.steps]
        out += (f"DDIM at {steps_} steps: accuracy {accs}; colour TV {cols} its floor. ")
        if len(more) and more.accuracy.iloc[-1] < top.accuracy - 2 * top.SE:
            last = more.iloc[-1]
            out += (f"Past {top.steps} steps more steps make the samples worse, down to "
                    f"{100 * last.accuracy:.1f}% at {last.steps}. ")
            fixed = s[(s.sampler == "ddim-clipped-eps") & (s.steps == last.steps)]
            if not len(fixed):
                out += (f"A likely reading: more steps follow the guided ODE more closely, and at "
                        f"$w = {meta['w']:g}$ with $\\hat x_0$ clamped to $[-1, 1]$ at every step "
                        f"its solutions over-saturate into strokes and blotches the CNN misreads. ")
            else:
                f = fixed.iloc[0]
                gap = f.accuracy - last.accuracy
                sure = gap > 2 * float(np.hypot(f.SE, last.SE))
                out += (f"The clamp is applied as diffusers applies it by default: $\\hat x_0$ "
                        f"is clamped to $[-1, 1]$ but the step keeps the model's $\\epsilon$, so "
                        f"$x_{{t-1}}$ leaves the line through $x_t$ and the clamped $\\hat x_0$. "
                        f"With $\\epsilon$ re-derived from the clamped $\\hat x_0$ (GLIDE's "
                        f"choice, diffusers' `use_clipped_model_output`), {last.steps} steps read "
                        f"{100 * f.accuracy:.1f}% ± {100 * f.SE:.1f} (n = {f.images:,}) "
                        + (f"instead of {100 * last.accuracy:.1f}%: most of the loss at many "
                           f"steps is that mismatch compounding step after step; the rest, below "
                           f"the {100 * top.accuracy:.1f}% of {top.steps} steps, is the guided "
                           f"ODE itself at $w = {meta['w']:g}$. "
                           if sure else
                           f"against {100 * last.accuracy:.1f}%, within two standard errors: the "
                           f"mismatch does not explain the loss. "))
    out += _solver_text(s)
    strided = s[(s.sampler == "ddpm") & (s.steps < 1000)]
    same = strided.merge(ddim, on="steps", suffixes=("", "_ddim"))
    if len(same):
        r = same.sort_values(["accuracy", "colour"], ascending=[False, True]).iloc[0]
        out += (f"At {r.steps} steps, ancestral sampling (DDPM on the strided grid: DDIM's update "
                f"with η = 1, fresh noise at every step) reads {100 * r.accuracy:.1f}% with colour "
                f"TV {r.colour:.1f}× its floor, against DDIM's {100 * r.accuracy_ddim:.1f}% and "
                f"{r.colour_ddim:.1f}× from the same starting noises: the noise added at each step "
                f"lets later steps correct what earlier guided steps got wrong, where the "
                f"deterministic ODE carries every error to the end (the reading of Karras et al. "
                f"2022, §4). ")
    bar = best.accuracy - rule_se(best.accuracy, int(best.images))
    out += ("The P1 rule (accuracy within one standard error of the best, with two right and two "
            "wrong images added as Agresti and Coull do so that a perfect score has an error too, "
            f"here at least {100 * bar:.2f}%; then the best colour "
            + (f"ratio, among the settings measured on {common} images per set)" if fewer
               else "ratio)")
            + f" picks **{name(pick)}**: {at(pick)}.")
    mine = s[(s.sampler == sampler) & (s.steps == steps)]
    if len(mine):
        m = mine.iloc[0]
        gap = 100 * (pick.accuracy - m.accuracy)
        why = (f" ({gap:.1f} points below the pick, SE {100 * float(np.hypot(pick.SE, m.SE)):.1f}, "
               f"for the better colour ratio)" if m.colour < pick.colour and gap >= 0 else "")
        out += (" That is this page's sampler." if (m.sampler, m.steps) == (pick.sampler, pick.steps)
                else f" This page uses {name(m)}: {at(m)}{why}.")
    return out

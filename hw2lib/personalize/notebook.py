"""Problem 3b for the notebook: a text-to-image model with two learned concepts, their
generations against the initialisation words, and naive against region-masked composition.

The math lives in the package's modules (textual inversion, sampling, region masks, scores);
this module draws the samples and tabulates what the report shows. Everything works on any
:class:`~hw2lib.personalize.t2i.TextToImage` model and :class:`~hw2lib.personalize.judge.Judge`
(the embedded scene model or Stable Diffusion: :mod:`hw2lib.personalize.setups`).
"""
from __future__ import annotations

import numpy as np
import torch

from . import compose
from .checks import cells_in_colours, in_style, position_text, style_check, style_text, style_words
from .compose import draw, noises
from .findings import COLOURED, findings
from .judge import Judge
from .t2i import TextToImage, encode_prompts

__all__ = ["band_text", "compose_two", "concept_table", "course_score_table", "curves_caption",
           "draw", "findings", "in_style", "loss_by_band", "noises", "position_text",
           "reference_rows", "style_check", "style_text", "style_words"]


def band_text(absolute, relative, token: str) -> str:
    """What the loss-by-band tables say, read from them."""
    uncond = '"" (unconditional)'
    learned = relative.loc[f"a {token}"]
    helps = [c for c in relative.columns if learned[c] < 1]
    low, high = absolute.loc[uncond].iloc[0], absolute.loc[uncond].iloc[-1]
    scale = (f"The plain $\\epsilon$ loss is {low / high:.0f} times larger in the lowest band of "
             f"$t$ than "
             f"in the highest, and in that band no caption does much better than none: a plain "
             f"loss over all $t$ is dominated by a term the token cannot change." if low > 2 * high
             else f"The plain $\\epsilon$ loss is about as large in the lowest band of $t$ as in the "
                  f"highest ({low / high:.2f} times).")
    return (f"{scale} Relative to the unconditional "
            f"prediction, the learned `{token}` helps in {len(helps)} of {len(relative.columns)} "
            f"bands (ratio below 1), most in {learned.idxmin()} ({learned.min():.2f}).")


def concept_table(judge: Judge, images: dict, init_prompts: dict):
    """Image score (100 x cosine with the concept's mean reference embedding) of each prompt's
    generations, for the learned token and for its initialisation word (``init_prompts``); on
    the learned token's row, the mean paired difference to the init word (same noises) and its
    standard error."""
    import pandas as pd
    rows = []
    for token in judge.tokens:
        pairs = (("learned token", f"a {token}"), ("init word", init_prompts[token]))
        s = {label: judge.subject_scores(images[prompt], token) for label, prompt in pairs}
        d = s["learned token"] - s["init word"]
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else np.nan  # one image: none
        for label, prompt in pairs:
            mine = label == "learned token"
            rows.append({"concept": token, "prompt": prompt, "which": label,
                         "image score": float(s[label].mean()), "std": float(s[label].std()),
                         "minus init word": float(d.mean()) if mine else np.nan,
                         "SE": se if mine else np.nan})
    return pd.DataFrame(rows)


def compose_two(model: TextToImage, judge: Judge, *, n: int, seed: int, w: float, steps: int,
                batch_size: int | None = None, style: tuple | None = None):
    """Naive prompt vs region-masked composition, same noises. Returns (images per method,
    table of per-region scores and the both-present rate with its binomial SE). ``style``:
    (token, ink, paper) of a style concept (:func:`~.checks.style_words`): the table then also
    counts the images with both in place whose ``token`` part is in those colours
    (:func:`~.checks.cells_in_colours`), as "present" alone only says nearer to its
    references than to the other concept's."""
    import pandas as pd
    t1, t2 = judge.tokens[:2]
    z = compose.noises(model, n, seed)
    naive = f"a {t1} next to a {t2}"
    images = {
        f'naive: "{naive}"': compose.chunked(lambda zz: compose.generate(
            model, [naive] * len(zz), noise=zz, w=w, steps=steps), z, batch_size),
        "region-masked": compose.chunked(lambda zz: compose.generate_regions(
            model, f"a {t1} on the left", f"a {t2} on the right", noise=zz, w=w, steps=steps),
            z, batch_size),
    }
    from ..report.show import se

    def where(score, occupied):  # the mean over the parts that hold something (NaN: none)
        return float(score[occupied].mean()) if occupied.any() else float("nan")
    rows, placed = [], {}
    for method, imgs in images.items():
        s = judge.region_scores(imgs)
        placed[method] = {k: int(s[k].sum()) for k in
                          ("both_present", f"both_{t1}", f"both_{t2}", "swapped", "both_occupied")}
        both = float(s["both_present"].mean())
        coloured = {}
        if style is not None:
            part = judge.halves(imgs)[0 if style[0] == t1 else 1]
            hit = s["both_present"] & cells_in_colours(part, style[1], style[2])
            coloured = {COLOURED.format(*style): float(hit.mean())}
        rows.append({"method": method, f"left vs {t1}": float(s[f"left_vs_{t1}"].mean()),
                     f"right vs {t2}": float(s[f"right_vs_{t2}"].mean()),
                     f"left vs {t1} where occupied": where(s[f"left_vs_{t1}"],
                                                           s["left_occupied"]),
                     f"right vs {t2} where occupied": where(s[f"right_vs_{t2}"],
                                                            s["right_occupied"]),
                     "both present": both, "SE of both present": se(both, len(imgs)),
                     "left occupied": float(s["left_occupied"].mean()),
                     "right occupied": float(s["right_occupied"].mean()), **coloured})
    table = pd.DataFrame(rows)
    table.attrs["placed"] = placed  # per method: image counts of where the concepts went
    return images, table


def compose_formats(table) -> dict:
    """show.table formats of :func:`compose_two`'s table: scores to 0.1, shares as percentages."""
    return {c: "{:.1f}" if " vs " in c else "{:.1%}" for c in table.columns[1:]}


@torch.no_grad()
def loss_by_band(model: TextToImage, images: torch.Tensor, prompts, *, bands=((0, 100), (100, 300), (300, 500),
                 (500, 700), (700, 1000)), n_batches: int = 3, batch_size: int = 64, seed: int = 0):
    """Mean eps MSE of each prompt on noisy versions of ``images`` (float (N, 3, H, W) in
    [-1, 1]) per band of t, every prompt on the same (image, t, noise) draws; the last column
    pair of the table is each band's loss divided by the empty prompt's, which is what the
    relative textual-inversion loss sees. Returns (absolute, relative) DataFrames."""
    import pandas as pd

    from ..diffusion import q_sample
    prompts = list(dict.fromkeys([*prompts, ""]))
    ctx = {p: encode_prompts(model, [p]) for p in prompts}
    schedule, g = model.schedule, torch.Generator().manual_seed(seed)
    loss = {p: {} for p in prompts}
    for lo, hi in bands:
        sums = dict.fromkeys(prompts, 0.0)
        for _ in range(n_batches):
            i = torch.randint(0, len(images), (batch_size,), generator=g)
            t = torch.randint(lo, hi, (batch_size,), generator=g)
            noise = torch.randn((batch_size, *images.shape[1:]), generator=g)
            x_t = q_sample(schedule, images[i], t, noise)
            for p in prompts:
                pred = model.eps(x_t, t, ctx[p].expand(batch_size, -1, -1))
                sums[p] += float(torch.nn.functional.mse_loss(pred.float(), noise)) / n_batches
        for p in prompts:
            loss[p][f"t ∈ [{lo}, {hi})"] = sums[p]
    absolute = pd.DataFrame(loss).T.rename(index={"": '"" (unconditional)'})
    return absolute, absolute / absolute.loc['"" (unconditional)']


def reference_rows(judge: Judge, k: int = 12) -> np.ndarray:
    """The concepts' reference images as one row per token, the first ``k`` of each (as many
    in every row as the shortest has)."""
    k = min(k, *(len(r) for r in judge.references.values()))
    return np.stack([judge.references[t][:k] for t in judge.tokens])


def curves_caption(curves: dict) -> str:
    """What each panel of the training-curve figure shows, left to right."""
    return "Training losses, left to right: " + "; ".join(
        f"{title} ({what}{', log scale' if what == 'ε MSE' else ''})"
        for title, (_, _, what) in curves.items()) + "."


def course_score_table(rows):
    """The course's scores of hw2_3.sh's output (:func:`hw2lib.personalize.score.score_outputs`)
    as a table: top-5 image and text scores per prompt against its baseline."""
    import pandas as pd
    return pd.DataFrame([{"concept": r.concept, "prompt": r.prompt, "images": r.n_images,
                          "image score": r.image_score, "text score": r.text_score,
                          "baseline": f"{r.baseline[0]:g} / {r.baseline[1]:g}",
                          "passed": "yes" if r.passed else "no"} for r in rows])

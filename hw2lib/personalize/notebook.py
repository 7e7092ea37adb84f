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

from ..report.show import signed
from . import compose
from .checks import in_style, position_text, style_check, style_text, style_words
from .compose import draw, noises
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
                batch_size: int | None = None):
    """Naive prompt vs region-masked composition, same noises. Returns (images per method,
    table of per-region scores and the both-present rate with its binomial SE)."""
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
        rows.append({"method": method, f"left vs {t1}": float(s[f"left_vs_{t1}"].mean()),
                     f"right vs {t2}": float(s[f"right_vs_{t2}"].mean()),
                     f"left vs {t1} where occupied": where(s[f"left_vs_{t1}"],
                                                           s["left_occupied"]),
                     f"right vs {t2} where occupied": where(s[f"right_vs_{t2}"],
                                                            s["right_occupied"]),
                     "both present": both, "SE of both present": se(both, len(imgs)),
                     "left occupied": float(s["left_occupied"].mean()),
                     "right occupied": float(s["right_occupied"].mean())})
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


def _style_count(style) -> tuple:
    """(ink, paper, k, of) of :func:`~.checks.style_check`'s ``(token, table, (ink, paper, k))``:
    k of the token's own ``of`` generations are ink on paper."""
    table, (ink, paper, _) = style[1], style[2]
    mine = table[table.which == "learned token"].iloc[0]
    return ink, paper, int(mine[f"{ink} on {paper}"]), int(mine["of"])


def findings(scores, comp, n: int, judge: Judge, style=None) -> str:
    """The findings of P3.2 as Markdown, every number read from :func:`concept_table` and
    :func:`compose_two`'s tables (``n`` images per prompt); ``judge`` names the space and the
    parts (cells or halves) the scores were taken in. ``style``: (token, table, (ink, paper,
    k)) of :func:`~.checks.style_check`, whose colour count is set beside that token's score."""
    part, parts = judge.part, judge.parts
    layout = ("and in the scene model's training captions the first-named digit stands on the "
              "left (\"a 3 next to a 7\" is a 3 on the left), so it belongs in the left cell."
              if part == "cell" else
              "but Stable Diffusion has no fixed layout: it is scored in the layout the "
              "region-masked composition uses, the first-named on the left, which is only one "
              "of the arrangements a reader would accept.")
    def concept(token):
        r = scores[(scores.concept == token) & (scores.which == "learned token")].iloc[0]
        i = scores[(scores.concept == token) & (scores.which == "init word")].iloc[0]
        d, e = r["minus init word"], r["SE"]
        if not np.isfinite(e):
            return (f"`{token}` scores {r['image score']:.1f} against its references where "
                    f"\"{i['prompt']}\" scores {i['image score']:.1f} (one image each: no "
                    "standard error, nothing can be concluded)")
        verdict = ("clearly above" if d > 2 * e else "clearly below" if d < -2 * e
                   else "within two standard errors of")
        out = (f"`{token}` scores {r['image score']:.1f} against its references where "
               f"\"{i['prompt']}\" scores {i['image score']:.1f}: a paired difference of "
               f"{signed(d, '{:+.1f}')} (SE {e:.1f}, n = {n}), {verdict} its initialisation word")
        if style is not None and style[0] == token:
            ink, paper, k, of = _style_count(style)
            out += (f"; in colour, {k} of {of} of its generations are {ink} on {paper} like its "
                    "references (the style check above)"
                    + (", so the score rises with what the generations share with the references "
                       "besides the colours, not with the style" if k < of / 4 and d > 0 else ""))
        return out
    t1, t2 = scores.concept.unique()[:2]
    unseen = ""  # a style token whose colours its own generations lack: "present" is relative
    if style is not None and style[0] in (t1, t2):
        ink, paper, k, of = _style_count(style)
        other = t1 if style[0] == t2 else t2
        if k < of / 4:
            unseen = (f" Since `{style[0]}`'s own generations are {ink} on {paper} in only {k} of "
                      f"{of}, a `{style[0]}` counted here is a {part} nearer to its references "
                      f"than to `{other}`'s, not one in its colours: these counts judge where "
                      f"`{other}` goes more than whether `{style[0]}`'s style appears.")
    naive, masked = comp.iloc[0], comp.iloc[1]
    cols = list(comp.columns)
    left, right = cols[1], cols[2]
    k_naive, k_masked = round(naive["both present"] * n), round(masked["both present"] * n)
    better = "raises" if k_masked > k_naive else "does not raise" if k_masked == k_naive else "lowers"
    p1, p2 = k_naive / n, k_masked / n
    se_diff = float(np.sqrt(p1 * (1 - p1) / n + p2 * (1 - p2) / n))
    sure = ("one image per method, so nothing can be concluded" if n < 2 else
            "more than two standard errors" if abs(p2 - p1) > 2 * se_diff else
            "within two standard errors, so more images per method would be needed to be sure")
    return "\n".join([
        "**Findings.**",
        "",
        f"* **Each concept alone.** {concept(t1)}. {concept(t2)}. The score measures closeness "
        f"to the references in {judge.space}, which is not the same as "
        "reproducing them: compare each row of the figure with the reference images above.",
        f"* **Both concepts in one prompt.** The naive prompt names `{t1}` first, {layout} It "
        f"gives `{t1}` left and `{t2}` right in "
        f"{k_naive} of {n} images (judged by which reference set each {part} is nearer to, "
        f"and only where both {parts} hold something); "
        f"its right {parts} score "
        f"{naive[right]:.1f} against `{t2}` and its left {parts} {naive[left]:.1f} against `{t1}`. "
        + _where_they_went(comp, n, t1, t2, part, parts) +
        "The likely cause: each token was fitted alone, on images where it was the only "
        "subject, and nothing in training ties a token to one place; in a prompt with two "
        "learned tokens both act on the whole image through the same cross-attention, so one "
        "concept can take over both places or the relation \"next to\" can be lost." + unseen,
        f"* **Region-masked composition** {better} this to {k_masked} of {n} (a difference of "
        f"{signed(100 * (p2 - p1), '{:+.0f}')} points, SE {100 * se_diff:.0f}: {sure}); "
        f"right {parts} "
        f"{masked[right]:.1f} against `{t2}`, left {parts} {masked[left]:.1f} against `{t1}`. "
        "Each prompt's guided noise prediction is applied only to its own half, so one token "
        "cannot steer the other half directly (each prediction still sees the whole $x_t$, so "
        "some influence crosses the border), at the price of needing the layout in advance.",
        f"* **Empty {parts}.** The left {parts} hold something in "
        f"{round(naive['left occupied'] * n)} of {n} naive and "
        f"{round(masked['left occupied'] * n)} region-masked images, the right {parts} in "
        f"{round(naive['right occupied'] * n)} and {round(masked['right occupied'] * n)}"
        + (f": where a concept is confined to its own {part}, that {part} is often left "
           f"{'nearly ' if part == 'cell' else ''}blank, so masking alone does not make a token "
           f"draw its concept there." if min(masked['left occupied'], masked['right occupied'])
           < min(naive['left occupied'], naive['right occupied']) else ".")
        + _blank_effect(comp, right, part, parts),
    ])


def _where_they_went(comp, n: int, t1: str, t2: str, part: str, parts: str) -> str:
    """The naive prompt's images by where the two concepts went, counted on the judge's own
    nearer-to calls (:func:`compose_two`'s ``attrs["placed"]``): one concept in both parts,
    swapped, or a blank part."""
    placed = comp.attrs.get("placed", {}).get(comp.iloc[0]["method"])
    if not placed:
        return ""
    a, b, sw = placed[f"both_{t1}"], placed[f"both_{t2}"], placed["swapped"]
    return (f"Where the concepts went instead, on the same judgments: in {a + b} of {n} naive "
            f"images both {parts} hold something and are nearer to one concept ({a} to `{t1}`, "
            f"{b} to `{t2}`), in {sw} the two are swapped, and in "
            f"{n - placed['both_occupied']} a {part} is blank. ")


def _blank_effect(comp, right: str, part: str, parts: str) -> str:
    """Whether blank parts lift the right part's score: its mean over all images against its
    mean where the part is occupied, per method (from :func:`compose_two`'s table)."""
    col = f"{right} where occupied"
    if col not in comp.columns:
        return ""
    out = []
    for _, r in comp.iterrows():
        name = r["method"].split(":")[0]
        if np.isnan(r[col]):
            out.append(f"{name}: no right {part} holds something")
            continue
        d = r[right] - r[col]
        out.append(f"{name} {r[col]:.1f} where occupied against {r[right]:.1f} over all"
                   + (" (blank ones lift it)" if d > 1 else " (blank ones lower it)" if d < -1
                      else ""))
    token = right.split(" vs ", 1)[1]
    return (f" Scored only where the right {part} holds something, the right {parts} against "
            f"`{token}` read: " + "; ".join(out) + ".")



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

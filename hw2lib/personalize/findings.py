"""The findings of the P3.2 page as Markdown, every number read from the concept and
composition tables of :mod:`hw2lib.personalize.notebook` (which re-exports :func:`findings`)."""
from __future__ import annotations

import numpy as np

from ..report.show import signed
from .checks import STYLE_SHOWN
from .judge import Judge

COLOURED = "both present, {0} {1} on {2}"  # compose_two's column with a style concept's colours


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
                       "besides the colours, not with the style" if k < STYLE_SHOWN * of and d > 0 else ""))
        return out
    t1, t2 = scores.concept.unique()[:2]
    unseen = ""  # a style token whose colours its own generations lack: "present" is relative
    if style is not None and style[0] in (t1, t2):
        ink, paper, k, of = _style_count(style)
        other = t1 if style[0] == t2 else t2
        if k < STYLE_SHOWN * of:
            unseen = (f" Since `{style[0]}`'s own generations are {ink} on {paper} in only {k} of "
                      f"{of}, a `{style[0]}` counted here is a {part} nearer to its references "
                      f"than to `{other}`'s, not one in its colours: these counts judge where "
                      f"`{other}` goes more than whether `{style[0]}`'s style appears.")
    naive, masked = comp.iloc[0], comp.iloc[1]
    in_colours, in_colours_masked = "", ""
    if style is not None and (col := COLOURED.format(style[0], *style[2][:2])) in comp.columns:
        in_colours = (f"; counted only where `{style[0]}`'s {part} is also {style[2][0]} on "
                      f"{style[2][1]} like its references, {round(naive[col] * n)} of {n}")
        in_colours_masked = f" ({round(masked[col] * n)} of {n} in its colours)"
    weak = [t for t in (t1, t2) if not _alone_ok(scores, t, style)]
    apart = ("" if not weak else
             f" Since {' and '.join(f'`{t}`' for t in weak)} alone "
             f"{'does' if len(weak) == 1 else 'do'} not reproduce "
             f"{'its concept' if len(weak) == 1 else 'their concepts'} (above), this test "
             "cannot tell a failure to compose from a failure to learn the concept.")
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
        f"and only where both {parts} hold something{in_colours}); "
        f"its right {parts} score "
        f"{naive[right]:.1f} against `{t2}` and its left {parts} {naive[left]:.1f} against `{t1}`. "
        + _where_they_went(comp, n, t1, t2, part, parts) +
        "The likely cause: each token was fitted alone, on images where it was the only "
        "subject, and nothing in training ties a token to one place; in a prompt with two "
        "learned tokens both act on the whole image through the same cross-attention, so one "
        "concept can take over both places or the relation \"next to\" can be lost." + unseen
        + apart,
        f"* **Region-masked composition** {better} this to {k_masked} of {n}{in_colours_masked} "
        f"(a difference of "
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


def _alone_ok(scores, token: str, style) -> bool:
    """Whether ``token`` alone reproduces its concept: clearly above its initialisation word
    (more than two SEs) and, for the style concept, in its colours in at least a share
    :data:`~.checks.STYLE_SHOWN` of its own generations."""
    r = scores[(scores.concept == token) & (scores.which == "learned token")].iloc[0]
    above = bool(np.isfinite(r["SE"]) and r["minus init word"] > 2 * r["SE"])
    if style is not None and style[0] == token:
        _, _, k, of = _style_count(style)
        return above and k >= STYLE_SHOWN * of
    return above


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

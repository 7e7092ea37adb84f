"""Measured checks of the generations beyond the judge's scores, for the P3.2 page: whether the
style concept's generations have its references' two colours (:func:`style_check`,
:func:`style_text`) and what a position word changes in a one-concept prompt
(:func:`position_text`)."""
from __future__ import annotations

import numpy as np

from .compose import draw
from .judge import Judge
from .t2i import TextToImage

STYLE_SHOWN = 0.25  # a style shows when this share of generations or more have its colours


def style_words(judge: Judge, token: str) -> tuple[str, str, int]:
    """The commonest (ink, paper) colour words of ``token``'s reference cells, as the scene
    model's captions name them (:func:`~hw2lib.personalize.scenes.cell_attributes`), and how
    many references have them."""
    from collections import Counter

    from ..images import to_model_range
    from .scenes import cell_attributes
    refs = to_model_range(judge.references[token])
    (pair, k), = Counter((a["ink"], a["paper"]) for a in cell_attributes(refs, [""] * len(refs))
                         ).most_common(1)
    return pair[0], pair[1], k


def in_style(judge: Judge, images_u8: np.ndarray, ink: str, paper: str) -> np.ndarray:
    """(N,) bool: whether each generation's subject (the cell that holds the digit) has ``ink``
    on ``paper``, by the 2-means colour words of :func:`~.scenes.cell_attributes`."""
    return cells_in_colours(judge.subject(images_u8), ink, paper)


def cells_in_colours(cells, ink: str, paper: str) -> np.ndarray:
    """(N,) bool: whether each scene cell (as :meth:`CellJudge.halves` gives them) has ``ink``
    on ``paper`` by the 2-means colour words of :func:`~.scenes.cell_attributes`."""
    from .scenes import cell_attributes
    return np.array([a["ink"] == ink and a["paper"] == paper
                     for a in cell_attributes(cells, [""] * len(cells))], dtype=bool)


def style_check(model: TextToImage, judge: Judge, token: str, images: dict, init_prompt: str, *,
                n_shown: int, seed: int, w: float, steps: int, batch_size: int | None = None,
                base_model: TextToImage | None = None):
    """How often a style token's generations have its references' two colours, against its
    initialisation word and against the colour words themselves (drawn here from the same
    noises), and, with ``base_model`` (the model before a change, without the token), the colour
    words there. ``images``: :func:`draw`'s generations, holding "a <token>" and
    ``init_prompt``. Returns (table, the references' style (ink, paper, how many references
    have it))."""
    import pandas as pd
    ink, paper, k_refs = style_words(judge, token)
    named = f"a {ink} {init_prompt.split(' ', 1)[1]} on {paper}"  # "a yellow digit on blue"
    n = len(images[f"a {token}"])
    kw = dict(n=n, seed=seed, w=w, steps=steps, batch_size=batch_size)
    drawn = {("learned token", f"a {token}"): images[f"a {token}"],
             ("init word", init_prompt): images[init_prompt],
             ("colour words", named): draw(model, [named], **kw)[named]}
    if base_model is not None:
        drawn[("colour words, base model", named)] = draw(base_model, [named], **kw)[named]
    rows = []
    for (label, prompt), imgs in drawn.items():
        hit = in_style(judge, imgs, ink, paper)
        rows.append({"prompt": prompt, "which": label, f"{ink} on {paper}": int(hit.sum()),
                     "of": len(hit), f"in the first {n_shown}": int(hit[:n_shown].sum())})
    return pd.DataFrame(rows), (ink, paper, k_refs)


def style_text(table, style: tuple, token: str, n_refs: int, model_manifest: dict) -> str:
    """What the style check says and what made the difference, from :func:`style_check`'s
    table and the scene model's manifest (its training cells' colour census and the share of
    recoloured copies)."""
    ink, paper, k_refs = style
    col = f"{ink} on {paper}"
    shown = [c for c in table.columns if c.startswith("in the first")][0]
    n_shown = int(shown.rsplit(" ", 1)[1])
    r = {row["which"]: row for _, row in table.iterrows()}
    mine, init, words = r["learned token"], r["init word"], r["colour words"]
    share = mine[col] / max(1, mine["of"])
    answer = ("No: the style was not learned visually. " if share < STYLE_SHOWN else
              "Partly. " if share < 0.75 else "Yes. ")
    out = [f"**Does `{token}` show its style?** {answer}Its references are {ink} ink on {paper} paper "
           f"({k_refs} of {n_refs}, by the colour words the scene model's captions use, from a "
           f"2-means of each cell's pixels). `{mine['prompt']}` gives {ink} on {paper} in "
           f"{mine[col]} of {mine['of']} generations ({mine[shown]} of the {n_shown} in the "
           f"figure), its initialisation word `{init['prompt']}` in {init[col]}, and the "
           f"colour words `{words['prompt']}` in {words[col]}."]
    base = r.get("colour words, base model")
    census = model_manifest.get("colour_census")
    if not census:
        out[-1] += (" This scene model's manifest has no colour census of its training cells "
                    "(it predates it): `checkpoints/README.md` says what was measured about its "
                    "colours.")
    else:
        data, extra = census["data"], census["recoloured"]
        n_data, n_extra = sum(data.values()), sum(extra.values())
        c_data, c_extra = data.get(col, 0), extra.get(col, 0)
        top = ", ".join(f"{k} ({v:,})" for k, v in list(data.items())[:3])
        head = (f"**What made the difference.** Textual inversion only moves the input of a "
                f"frozen model, so a token can only ask for what the model can already draw. "
                f"Among the {n_data:,} cells of the scene model's training data, {col} occurs "
                f"{c_data:,} times ({100 * c_data / n_data:.2f}%; the commonest pairs are {top})")
        if not model_manifest.get("recolour"):
            out.append(head + f". This scene model was trained on those alone, and its colour "
                       f"words give {col} in {words[col]} of {words['of']}: it can hardly draw "
                       f"{col}, so `{token}` cannot ask for it. Recolour augmentation (copies of "
                       f"cells recoloured, with captions naming the ink and the paper; `train "
                       f"t2i --recolour`) is the remedy this project built for it; its runs so "
                       f"far have not made `{token}` appear (checkpoints/README.md).")
        else:
            trained = "trained further" if model_manifest.get("init") else "trained"
            out.append(
                head + ": trained on those alone (the base model"
                + (f": the colour words give {col} in {base[col]} of {base['of']}"
                   if base is not None else "")
                + f"), the scene model could not draw it, so no token could ask for it. It is "
                f"therefore {trained} with recolour augmentation: "
                f"{model_manifest['recolour']:.0%} of its cells are added again ({n_extra:,} "
                f"copies) with the digit and its plate recoloured in a random pair of colours and "
                f"captions naming that ink and paper ({c_extra:,} of them {col}). "
                + ((f"The colour words now give {col} in {words[col]} of {words['of']}: the "
                    f"colours are within the model's range, and the token finds them "
                    + (f"more often than the colour words do: it is fitted to the references' "
                       f"particular {ink} and {paper}, which the coarse colour words only "
                       "approximate." if mine[col] > words[col] else
                       "as often as the colour words do." if mine[col] == words[col] else
                       "less often than the colour words do."))
                   if words[col] >= STYLE_SHOWN * words["of"] else
                   (f"Yet the colour words still give {col} in only {words[col]} of "
                    f"{words['of']}: the augmentation has not brought it within the model's "
                    "range, so no token can ask for it either.")))
    return "\n\n".join(out)


def position_text(images: dict, judge: Judge) -> str:
    """Whether a position word in a one-concept prompt ("a <new1> on the right") moves the
    concept: per such prompt, the mean absolute difference (0-255) of its generations from the
    plain prompt's (same noises) and, in the scene model (a judge with cells), how many put the
    concept's cell on the named side. Empty when no prompt names a side."""
    parts = []
    for prompt, imgs in images.items():
        for side in ("left", "right"):
            base = prompt.removesuffix(f" on the {side}")
            if base == prompt or base not in images:
                continue
            diff = float(np.abs(imgs.astype(np.float64) - images[base].astype(np.float64)).mean())
            text = (f"`{prompt}` differs from `{base}` by {diff:.1f} grey levels per pixel on "
                    f"average (same noises)")
            if hasattr(judge, "subject_on_left"):  # a judge of cells (the scene model)
                on_left = judge.subject_on_left(imgs)
                k = int(on_left.sum()) if side == "left" else int((~on_left).sum())
                text += f" and puts the concept's cell on the {side} in {k} of {len(imgs)}"
            parts.append(text)
    if not parts:
        return ""
    return ("**Position words.** " + "; ".join(parts) + ". A learned token fitted on images "
            "captioned with and without the side (the concept in either cell) gives a position "
            "word little to act on when the row barely differs from the plain prompt's: the "
            "token, not the word, decides where the concept goes.")

"""P1's look: the look statistics of :mod:`hw2lib.look` beside the accuracy of the samples, and
the guidance weight chosen on accuracy and look together.

The samples are never drawn here: the grid's images and the guidance sweep's images are scored
as they are; the real-data side (features of the held-out split, the floors) is computed once
per set in a :class:`hw2lib.look.LookReference` and reused for every sample set.
"""
from __future__ import annotations

import numpy as np

from ..look import COLOUR_RATIO, FORMATS, KID_RATIO, look_against, ratio_cell, reference

LOOK_COLUMNS = ["KID", "KID sd", "KID floor", "KID floor sd", KID_RATIO, "colour TV",
                "colour TV floor", "colour TV floor sd", "colour TV / floor"]
WITHIN = 2.0  # "looks like the data": a statistic within this factor of its floor
RULE_LOOK = "colour TV / floor"  # the look statistic of the guidance rule


def look_references(sets: dict, model, *, seed: int = 0, cache_dir=None) -> dict:
    """{set: :func:`hw2lib.look.reference`} of each DigitSet's held-out and training splits,
    the features on ``model`` (the project CNN); cached in ``cache_dir`` when given."""
    return {name: reference(model, ds.x_test, ds.x_train, seed=seed, cache_dir=cache_dir)
            for name, ds in sets.items()}


def look_row(model, images: np.ndarray, ref) -> dict:
    """The :data:`LOOK_COLUMNS` of ``images`` against ``ref``."""
    s = look_against(ref, model, images)
    return {k: s[k] for k in LOOK_COLUMNS}


def table_formats(table) -> dict:
    """show.table formats for a score or sweep table: percentages for accuracy and SE, five
    decimals for KID, three for colour TV (so that each ratio can be checked from the cells: KID
    and its floor are often below 0.001), and the shared cells of :data:`hw2lib.look.FORMATS`."""
    fmt = {**FORMATS, "KID": "{:.5f}", "KID sd": "{:.5f}", "KID floor": "{:.5f}",
           "KID floor sd": "{:.5f}", "colour TV": "{:.3f}", "colour TV floor": "{:.3f}",
           "w": "{:g}"}
    return {k: v for k, v in fmt.items() if k in table.columns}


def view(table, names: dict | None = None):
    """The columns a page shows of a score or sweep table (:func:`sweep_table`): the count of
    correct images, the samples' own KID sd and the colour floor's sd are left to the prose (and
    metrics.json), so that each ratio can be checked from the statistic, its floor and (KID) the
    floor's sd shown; set keys become ``names``."""
    hide = ["correct", "KID sd", "colour TV floor sd"]
    out = table.drop(columns=[c for c in hide if c in table.columns])
    return out.assign(set=out.set.map(names)) if names and "set" in out.columns else out


def look_text(table, *, larger=None, guidance: float | None = None,
              names: dict | None = None) -> str:
    """The look paragraph, from :func:`hw2lib.p1.score_table`'s project-CNN rows (with look).
    ``larger``: the guidance sweep (:func:`sweep_table`, sets named by ``names``); where it drew
    more images at the page's ``guidance`` and its verdicts differ from the grid's, its verdict
    comes first and the grid's follows as what fewer images can show."""
    rows = table[table.classifier == "project CNN"].dropna(subset=["KID"])
    lead, agree = _larger_draw(larger, names or {}, guidance, table)
    parts, far, undefined = [], [], []
    for _, r in rows.iterrows():
        parts.append(f"{r['digit set']} (n = {r.images:,}): KID {_times(r[KID_RATIO])} its "
                     f"floor's upper level, colour TV {_times(r['colour TV / floor'])} its floor")
        for k, c in (("KID", KID_RATIO), ("colour TV", "colour TV / floor")):
            if not r[c] <= WITHIN:
                (far if np.isfinite(r[c]) else undefined).append(f"{r['digit set']} {k}")
    sets_far = list(dict.fromkeys(f.rsplit(" ", 2)[0] if f.endswith("colour TV") else
                                  f.rsplit(" ", 1)[0] for f in far))
    verdict = (f"Not within {WITHIN:g}× of the floor: {', '.join(far)}. On these statistics "
               f"the {' and '.join(sets_far)} samples do not look like the real images, however "
               f"well they read." if far else
               f"Every look statistic with a ratio is within {WITHIN:g}× of its floor." +
               (f" Without a ratio: {', '.join(undefined)}." if undefined else "") +
               ("" if lead else _size_caveat(rows, bool(agree))))
    grid = "; ".join(parts) + ". " + verdict
    if lead:
        grid = (f"\n\nOn the grid's own images alone: {grid} At n = {int(rows.images.min()):,} "
                f"that verdict cannot be read: two real samples of the set already differ by up "
                f"to the floor's upper level at that size, so only a larger gap shows.")
    return ("**Look.** Accuracy only says that a sample reads as its digit. Two statistics "
            "compare the samples with held-out real images: KID on the project CNN's features "
            "(mean and sd over 100 random subsets of the held-out images) and the total variation "
            "distance between the histograms of the images' mean colours (colour TV). Each floor "
            "is the same statistic between real training and held-out images at the same sample "
            "size, what two real samples of the set differ by; KID is unbiased, so its floor is 0 "
            "within its spread and KID is compared with the floor's upper level, mean + 2 sd "
            "(the table's columns). " + (lead + grid if lead else grid + agree))


def _size_caveat(rows, larger: bool = False) -> str:
    """Why "within 2x" holds only at the size measured: the floor's spread shrinks with n."""
    if rows.empty:
        return ""
    upper = ", ".join(f"{r['digit set']} {r['KID floor'] + 2 * r['KID floor sd']:.4f}"
                      for _, r in rows.iterrows())
    n = ", ".join(dict.fromkeys(f"{int(r.images):,}" for _, r in rows.iterrows()))
    return (f" That holds at n = {n}: at that size, two real samples of the set already differ "
            f"by up to the floor's upper level (KID floor + 2 sd: {upper}), so only a larger gap "
            f"shows. The floor narrows as n grows while a real gap does not, so the same model "
            f"can be outside {WITHIN:g}× on larger draws" + ("." if larger else
                                                             " (the guidance sweep below can be "
                                                             "one)."))


def _times(r: float) -> str:
    if not np.isfinite(r):
        return "has no ratio to"
    if r <= 0:  # KID below 0: as close as two real samples, within its spread
        return "is at or below (within)"
    return f"{r:.1f}× ({'within' if r <= WITHIN else 'not within'} {WITHIN:g}×)"


def sweep_table(sweep, images: dict, model, refs: dict):
    """One row per (w, set) of :func:`hw2lib.p1.guidance_sweep`'s accuracy table ``sweep`` and
    images ``{(w, set): uint8}``: accuracy, SE, n and the :data:`LOOK_COLUMNS`."""
    import pandas as pd

    from ..report.show import se
    rows = []
    for w in sweep.index:
        for name in sweep.columns:
            p, n = float(sweep.loc[w, name]), len(images[(w, name)])
            rows.append({"w": float(w), "set": name, "images": n, "accuracy": p, "SE": se(p, n),
                         **look_row(model, images[(w, name)], refs[name])})
    return pd.DataFrame(rows)


def sweep_look_text(table, names: dict) -> str:
    """What the sweep says of the look (:func:`sweep_table`): the range of each ratio per set over
    w, the w (if any) that keeps every ratio of every set within :data:`WITHIN`, and, when w = 0
    was measured and is already outside, that the gap is there without guidance."""
    ratios = {"KID": KID_RATIO, "colour TV": COLOUR_RATIO}
    spans = []
    for k, col in ratios.items():
        per = [f"{r.min():.1f}–{r.max():.1f}× ({names.get(n, n)})" for n, r in
               ((n, table[table.set == n][col]) for n in dict.fromkeys(table.set))]
        spans.append(f"{k} {' and '.join(per)}")
    worst = table.groupby("w")[list(ratios.values())].max().max(axis=1)
    good = [w for w, v in worst.items() if v <= WITHIN]
    n = int(table.images.iloc[0])
    text = (f"**Look over w** (n = {n:,} per set and w): {'; '.join(spans)} their floors. "
            + (f"Every ratio of both sets is within {WITHIN:g}× at w = "
               f"{', '.join(f'{w:g}' for w in good)}." if good else
               f"No w keeps every ratio of both sets within {WITHIN:g}×."))
    if 0.0 in set(table.w) and worst[0.0] > WITHIN:
        zero = table[table.w == 0.0]
        far = ", ".join(f"KID {r[KID_RATIO]:.1f}× and colour TV {r[COLOUR_RATIO]:.1f}× "
                        f"for {names.get(r.set, r.set)}" for _, r in zero.iterrows())
        text += (f" Without guidance (w = 0) the ratios are already {far}: that much of the "
                 f"gap is the model's, not guidance's.")
    return text


def _larger_draw(table, names: dict, guidance, grid) -> tuple[str, str]:
    """(lead, agreement): the sweep's rows at the page's w against the grid's look verdicts on
    fewer images. Where a verdict differs, ``lead`` gives the larger draw's ratios first (the
    floor narrows with n, a real gap does not); where none differs, ``agreement`` says so."""
    if table is None or guidance is None or guidance not in set(table.w):
        return "", ""
    rows = grid[grid.classifier == "project CNN"].dropna(subset=["KID"])
    here = table[table.w == guidance]
    n, m = int(here.images.iloc[0]), int(rows.images.min()) if len(rows) else 0
    if not len(rows) or n <= m:
        return "", ""
    flips, ratios, far = False, [], []
    for _, r in here.iterrows():
        label = names.get(r.set, r.set)
        small = rows[rows["digit set"] == label]
        ratios.append(f"{label} KID {ratio_cell(r[KID_RATIO])}, colour TV "
                      f"{ratio_cell(r[COLOUR_RATIO])}")
        for k, col in (("KID", KID_RATIO), ("colour TV", COLOUR_RATIO)):
            far += [f"{label} {k}"] * (not r[col] <= WITHIN)
            flips |= bool(len(small) and (small[col].iloc[0] <= WITHIN) != (r[col] <= WITHIN))
    if not flips:
        return "", (f" The guidance sweep below drew {n:,} per set at this w = {guidance:g}: it "
                    f"gives the same verdicts as these {m:,}.")
    return (f"**The verdict to read, on {n:,} images per set** (the guidance sweep below, at "
            f"this w = {guidance:g}): " + "; ".join(ratios) + " (against the floor's upper level "
            f"and the floor). " + (f"Not within {WITHIN:g}×: {', '.join(far)}; on these the "
                                   f"samples do not look like the real images, however well "
                                   f"they read." if far else
                                   f"Every ratio is within {WITHIN:g}×."), "")


def choose_guidance(table, *, look: str = RULE_LOOK) -> dict:
    """The rule: per w, the accuracy of both sets together (mean of the sets' accuracies, n the
    images of both) and the mean over sets of ``look``; the candidates are the w whose accuracy
    is within one standard error (of the best w's accuracy, :func:`hw2lib.report.show.rule_se`)
    of the best; among them the w with the smallest look wins (ties: the smaller w). Returns
    {"w", "best_w", "bar", "look", "candidates", "per_w": DataFrame (w: accuracy, SE, images,
    look), "table": ``table``}."""
    from ..report.show import rule_se, se
    g = table.groupby("w")
    per_w = g.agg(accuracy=("accuracy", "mean"), images=("images", "sum"), look=(look, "mean"))
    per_w["SE"] = [se(p, n) for p, n in zip(per_w.accuracy, per_w.images)]
    best_w = float(per_w.accuracy.idxmax())
    bar = per_w.accuracy[best_w] - rule_se(per_w.accuracy[best_w], int(per_w.images[best_w]))
    cand = per_w[per_w.accuracy >= bar - 1e-12]
    pick = float(cand.look.idxmin()) if cand.look.notna().any() else best_w
    return {"w": pick, "best_w": best_w, "bar": float(bar), "look": look,
            "candidates": [float(w) for w in cand.index], "per_w": per_w, "table": table}


def choice_text(choice: dict, guidance: float, names: dict) -> str:
    """The rule, what it picks and how that compares with the notebook's ``guidance``."""
    from ..report.show import pct
    pw = choice["per_w"]
    w, b = choice["w"], choice["best_w"]
    look = choice["look"].replace(" / floor", "")
    text = (f"**Rule.** Take the accuracy of both sets together at each w; keep the w within one "
            f"standard error of the best (w = {b:g}: {pct(pw.accuracy[b], int(pw.images[b]))}; "
            f"the rule's error adds two right and two wrong images, Agresti and Coull's, so that a "
            f"perfect score has one too: at least {pct(choice['bar'], digits=2)}): w = "
            f"{', '.join(f'{c:g}' for c in choice['candidates'])}; among them take the w whose "
            f"{look} is the smallest multiple of its floor (mean of "
            f"{' and '.join(names.values())}). The rule picks **w = {w:g}** "
            f"({pct(pw.accuracy[w], int(pw.images[w]))}, {look} {pw.look[w]:.2f}× its floor).")
    tail = _near_misses(choice) + _look_noise(choice) + _kid_aside(choice, names)
    if w == guidance:
        return text + f" That is the notebook's `guidance` parameter, w = {guidance:g}." + tail
    if guidance in pw.index:
        g = guidance
        text += (f" The notebook's `guidance` parameter is w = {g:g} "
                 f"({pct(pw.accuracy[g], int(pw.images[g]))}, {look} {pw.look[g]:.2f}× its "
                 f"floor): not the rule's choice.")
    else:
        text += f" The notebook's `guidance` parameter, w = {guidance:g}, is not a sweep point."
    return text + tail


def _near_misses(choice: dict) -> str:
    """The w with a better look than the pick that the accuracy bar left out although its
    accuracy is within its own standard error of the bar, and by how much it missed."""
    from ..report.show import pct
    pw = choice["per_w"]
    out = [f" w = {m:g} has the better look ({pw.look[m]:.2f}×) and misses the bar by only "
           f"{100 * (choice['bar'] - pw.accuracy[m]):.2f} points "
           f"({pct(pw.accuracy[m], int(pw.images[m]))}), well within its standard error."
           for m in pw.index if m not in choice["candidates"]
           and pw.look[m] < pw.look[choice["w"]] and pw.accuracy[m] >= choice["bar"] - pw.SE[m]]
    return "".join(out)


def _kid_aside(choice: dict, names: dict) -> str:
    """What the rule leaves out when it reads the colour ratio: KID at the pick, per set, where
    it is beyond :data:`WITHIN`, and whether another w has it lower."""
    t = choice.get("table")
    if t is None or KID_RATIO not in t.columns or choice["look"] == KID_RATIO:
        return ""
    out = []
    for name, rows in t.groupby("set", sort=False):
        k = rows.set_index("w")[KID_RATIO]
        if k[choice["w"]] > WITHIN:
            low = k.idxmin()
            worst = "the largest of the sweep, " * bool(k.idxmax() == choice["w"])
            out.append(f"{names.get(name, name)} {k[choice['w']]:.1f}×"
                       + (f" ({worst}lowest at w = {low:g}: {k[low]:.1f}×)"
                          if low != choice["w"] else " (its lowest)"))
    if not out:
        return ""
    kid = t.groupby("w")[KID_RATIO].mean()[choice["candidates"]]
    alt, pw, w = float(kid.idxmin()), choice["per_w"], choice["w"]
    other = (f" Read on KID instead (mean of the sets, among the same candidates) the rule would "
             f"pick w = {alt:g}: {kid[alt]:.1f}× against {kid[w]:.1f}× at w = {w:g}, with colour "
             f"TV {pw.look[alt]:.2f}× against {pw.look[w]:.2f}×; the two statistics disagree, "
             f"and the page follows colour, for this reason: the project CNN "
             f"is trained to ignore colour (random channel order, inversion and colour jitter, "
             f"hw2lib.classifier), so KID on its features cannot see a collapse onto a few "
             f"colour schemes, the failure this project first saw from guidance, which colour TV "
             f"measures directly; KID reads what the CNN does see, strokes and texture." if alt != w else
             " Read on KID instead (mean of the sets) the rule would pick the same w.")
    return (" KID does not enter the rule; at the pick it is " + ", ".join(out)
            + " its floor's upper level." + other)


def _look_noise(choice: dict) -> str:
    """How noisy the sweep's look is: the colour floor's sd as a share of the floor."""
    t = choice.get("table")
    if t is None or "colour TV floor sd" not in t.columns:
        return ""
    rel = float((t["colour TV floor sd"] / t["colour TV floor"]).mean())
    n = int(t.images.median())
    return (f" At {n} images per set the real-vs-real colour TV itself varies by "
            f"{rel:.0%} of its mean (one sd), so differences between w smaller than about "
            f"{rel:.1f} in the colour ratio are within that noise.")


def sweep_figure(table, choice: dict, guidance: float, names: dict):
    """Two panels over w: each set's accuracy (± one SE) and its look statistics as multiples
    of their floors (with the floor and the :data:`WITHIN` x level); dashed lines
    mark the rule's w and, where it differs, the notebook's ``guidance``."""
    from ..viz import panels_figure
    ws = sorted(table.w.unique())
    acc, look = {}, {}
    for i, (name, label) in enumerate(names.items()):
        t = table[table.set == name].set_index("w").loc[ws]
        acc[label] = (100 * t.accuracy, 100 * t.SE, {"color": f"C{i}"})
        look[f"{label}: colour TV / floor"] = (t["colour TV / floor"], None, {"color": f"C{i}"})
        look[f"{label}: {KID_RATIO}"] = (t[KID_RATIO], None, {"color": f"C{i}", "ls": "--",
                                                              "marker": "s"})
    marks = {f"rule's choice, w = {choice['w']:g}": choice["w"]}
    if guidance != choice["w"]:
        marks[f"notebook's guidance, w = {guidance:g}"] = guidance
    return panels_figure(
        ws, [{"title": "Readable as the digit", "ylabel": "project CNN accuracy (%)",
              "series": acc},
             {"title": "Looks like the data",
              "ylabel": "multiple of the floor",
              "series": look, "hlines": {"floor": 1.0, f"{WITHIN:g}× the floor": WITHIN}}],
        xlabel="guidance weight w", marks=marks)

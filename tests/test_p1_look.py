"""P1's look columns, floors, ratios and the guidance rule, on synthetic images and sweeps."""
import numpy as np
import pandas as pd
import pytest
import torch

from hw2lib import p1
from hw2lib.classifier import DigitCNN
from hw2lib.look import KID_RATIO, floors, look_against, ratio, reference
from hw2lib.report.show import rule_se, se


def flat(n, rgb):
    x = np.zeros((n, 28, 28, 3), np.uint8)
    x[...] = rgb
    return x


GREY, ORANGE = (120, 120, 120), (230, 140, 20)


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return DigitCNN().eval()


def test_colour_floor_and_ratio_on_known_colours(cnn):
    test = flat(40, GREY)
    train = np.concatenate([flat(100, GREY), flat(100, ORANGE)])  # half orange
    ref = reference(cnn, test, train, pool=50, seed=0)
    f = floors(ref, 20, subsets=5, draws=200)
    # TV between a draw of 20 half-orange training images and all-grey test = its orange share
    assert f["colour TV floor"] == pytest.approx(0.5, abs=0.03)
    assert 0.05 < f["colour TV floor sd"] < 0.2  # hypergeometric sd ~0.11
    s = look_against(ref, cnn, flat(20, ORANGE), subsets=5, draws=200)
    assert s["colour TV"] == 1.0
    assert s["colour TV / floor"] == pytest.approx(1.0 / f["colour TV floor"])
    upper = s["KID floor"] + 2 * s["KID floor sd"]
    assert upper > 0 and s[KID_RATIO] == pytest.approx(s["KID"] / upper)
    # the floor at n = 20 was computed once and reused
    assert list(ref.floors) == [(20, 5, 200)]
    assert ref.floors[(20, 5, 200)] is floors(ref, 20, subsets=5, draws=200)


def test_ratio_is_undefined_for_a_floor_at_or_below_zero():
    assert ratio(0.3, 0.1) == pytest.approx(3.0)
    assert np.isnan(ratio(0.3, 0.0)) and np.isnan(ratio(0.3, -0.01))


def test_samples_drawn_like_the_training_data_sit_at_the_floor(cnn):
    """Negative control: real training images as 'samples' are within 2x of both floors,
    flat orange images far outside the colour one."""
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (300, 28, 28, 3), dtype=np.uint8)
    test = rng.integers(0, 256, (100, 28, 28, 3), dtype=np.uint8)
    ref = reference(cnn, test, train, pool=200, seed=1)
    real = look_against(ref, cnn, train[:50], subsets=20)
    fake = look_against(ref, cnn, flat(50, ORANGE), subsets=20)
    assert real["colour TV / floor"] < p1.look.WITHIN
    assert abs(real["KID"]) < 3 * real["KID floor sd"] + abs(real["KID floor"])
    assert fake["colour TV / floor"] > 2 * p1.look.WITHIN and fake["KID"] > 10 * abs(real["KID"])


def sweep(acc, look, n=30, sets=("mnistm", "svhn")):
    """A synthetic sweep table: both sets get accuracy acc[w] and colour ratio look[w]."""
    return pd.DataFrame([{"w": w, "set": s, "images": n, "accuracy": acc[w], "SE": se(acc[w], n),
                          "colour TV / floor": look[w], KID_RATIO: 1.0}
                         for w in acc for s in sets])


ACC = {0.0: 0.50, 2.0: 0.94, 4.0: 0.95, 6.0: 0.96}
LOOK = {0.0: 1.1, 2.0: 1.6, 4.0: 2.5, 6.0: 3.5}


def test_rule_picks_the_best_look_within_one_se_of_the_best_accuracy():
    c = p1.choose_guidance(sweep(ACC, LOOK))
    # best 96% of 60 images, the rule's SE 3.2 points: the bar is 92.8%, so w = 0 is out
    assert c["best_w"] == 6.0 and c["bar"] == pytest.approx(0.96 - rule_se(0.96, 60))
    assert rule_se(0.96, 60) == pytest.approx(((59.6 / 64) * (4.4 / 64) / 64) ** 0.5)
    assert c["candidates"] == [2.0, 4.0, 6.0]
    assert c["w"] == 2.0  # not w = 0, whose look is best but whose accuracy is far below
    assert c["per_w"].loc[2.0, "images"] == 60


def test_rule_negative_control_a_w_below_the_bar_is_never_picked():
    c = p1.choose_guidance(sweep({**ACC, 2.0: 0.90}, LOOK))
    assert 2.0 not in c["candidates"] and c["w"] == 4.0


def test_rule_ties_go_to_the_smaller_w_and_sets_are_averaged():
    tie = p1.choose_guidance(sweep(ACC, {**LOOK, 4.0: 1.6}))
    assert tie["w"] == 2.0
    # the look is averaged over the sets: w = 4 wins when one set's w = 2 look is bad enough
    t = sweep(ACC, LOOK)
    t.loc[(t.w == 2.0) & (t.set == "svhn"), "colour TV / floor"] = 4.0
    assert p1.choose_guidance(t)["w"] == 4.0  # mean look at w = 2 is 2.8 > 2.5


def test_choice_text_says_whether_the_rule_agrees_with_the_parameter():
    c = p1.choose_guidance(sweep(ACC, LOOK))
    names = {"mnistm": "MNIST-M-like", "svhn": "SVHN-like"}
    agree, differ = p1.choice_text(c, 2.0, names), p1.choice_text(c, 4.0, names)
    assert "picks **w = 2**" in agree and "That is the notebook's `guidance`" in agree
    assert "not the rule's choice" in differ and "w = 4 (95.0% ± 2.8 (n = 60)" in differ
    # w = 0 looks better than the pick but is far below the bar: no near miss
    assert "w = 0 has" not in agree
    # w = 2 at 92% misses the bar (92.84%) by less than its SE: said, with the margin
    near = p1.choose_guidance(sweep({**ACC, 2.0: 0.92}, LOOK))
    assert near["w"] == 4.0
    assert "w = 2 has the better look (1.60×) and misses the bar by only 0.84 points" in (
        p1.choice_text(near, 4.0, names))
    noisy = sweep(ACC, LOOK).assign(**{"colour TV floor": 0.3, "colour TV floor sd": 0.06})
    assert "varies by 20% of its mean" in p1.choice_text(p1.choose_guidance(noisy), 2.0, names)
    assert "KID does not enter" not in agree  # KID 1x everywhere: nothing to say
    kid = sweep(ACC, LOOK).assign(**{KID_RATIO: [3.0, 3.0, 12.0, 2.1, 11.0, 5.0, 6.2, 7.2]})
    assert ("KID does not enter the rule; at the pick it is MNIST-M-like 12.0× (the largest of "
            "the sweep, lowest at w = 0: 3.0×), SVHN-like 2.1× (its lowest) its floor's upper "
            "level.") in (
        p1.choice_text(p1.choose_guidance(kid), 2.0, names))
    # candidates 2, 4, 6: mean KID 7.05, 8.0, 6.7 -> KID alone would pick w = 6
    assert ("Read on KID instead (mean of the sets, among the same candidates) the rule would "
            "pick w = 6: 6.7× against 7.0× at w = 2, with colour TV 3.50× against 1.60×") in (
        p1.choice_text(p1.choose_guidance(kid), 2.0, names))


def score_rows(kid_r, tv_r):
    return pd.DataFrame([{"digit set": "MNIST-M-like", "classifier": "project CNN", "images": 100,
                          "accuracy": 0.9, "SE": 0.03, "KID": 0.02 * kid_r, "KID sd": 0.001,
                          "KID floor": 0.01, "KID floor sd": 0.005, KID_RATIO: kid_r,
                          "colour TV": 0.2 * tv_r, "colour TV floor sd": 0.04,
                          "colour TV floor": 0.2, "colour TV / floor": tv_r},
                         {"digit set": "MNIST-M-like", "classifier": "course LeNet",
                          "images": 100, "accuracy": 0.8, "SE": 0.04}])


def test_look_text_reports_the_2x_verdict_from_the_table():
    bad = p1.look_text(score_rows(1.5, 2.4))
    assert "colour TV 2.4× (not within 2×) its floor" in bad
    assert "KID 1.5× (within 2×) its floor's upper level" in bad
    assert "Not within 2× of the floor: MNIST-M-like colour TV." in bad
    assert "the MNIST-M-like samples do not look like the real images" in bad
    assert "KID is at or below (within) its floor's upper level" in p1.look_text(score_rows(-0.2, 1.0))
    good = p1.look_text(score_rows(1.5, 1.9))
    assert "Every look statistic with a ratio is within 2× of its floor." in good
    assert "Not within" not in good
    # "within" is said for the size measured, with the floor's upper level that size allows
    assert "That holds at n = 100" in good and "(KID floor + 2 sd: MNIST-M-like 0.0200)" in good
    assert "That holds" not in bad  # a gap that shows needs no caveat
    undefined = score_rows(1.5, 1.0)
    undefined.loc[0, ["KID floor", "KID floor sd", KID_RATIO]] = [-0.02, 0.001, np.nan]
    text = p1.look_text(undefined)
    assert "KID has no ratio to its floor's upper level" in text
    assert "Without a ratio: MNIST-M-like KID." in text and "Not within" not in text


def test_sweep_table_scores_each_w_and_set(cnn):
    rng = np.random.default_rng(2)
    test = rng.integers(0, 256, (60, 28, 28, 3), dtype=np.uint8)
    refs = {"mnistm": reference(cnn, test, test, pool=60)}
    acc = pd.DataFrame({"mnistm": [0.5, 0.9]}, index=pd.Index([0.0, 4.0], name="w"))
    images = {(0.0, "mnistm"): test[:20], (4.0, "mnistm"): flat(20, ORANGE)}
    t = p1.sweep_table(acc, images, cnn, refs)
    assert list(t.w) == [0.0, 4.0] and list(t.images) == [20, 20]
    assert t.SE.tolist() == pytest.approx([se(0.5, 20), se(0.9, 20)])
    assert t["colour TV"].iloc[1] == 1.0 and t["colour TV"].iloc[0] < 0.6
    assert set(p1.look.LOOK_COLUMNS) <= set(t.columns)


def test_view_shows_the_floors_and_names_the_sets():
    t = sweep(ACC, LOOK).assign(**{"KID sd": 0.01, "KID floor": 0.0, "KID floor sd": 0.01,
                                   "colour TV floor": 0.2, "colour TV floor sd": 0.02})
    v = p1.view(t, {"mnistm": "MNIST-M-like", "svhn": "SVHN-like"})
    assert set(v.set) == {"MNIST-M-like", "SVHN-like"} and set(t.set) == {"mnistm", "svhn"}
    # the floors and the KID floor's sd, not the samples' own: each ratio's denominator is on
    # the page, in the sweep's table as in the score table
    assert {"KID floor", "KID floor sd", "colour TV floor"} <= set(v.columns)
    assert "KID sd" not in v.columns and "colour TV floor sd" not in v.columns


def test_sweep_look_text_says_whether_any_w_is_within_and_what_w_0_shows():
    import pandas as pd
    from hw2lib.look import KID_RATIO
    rows = [(0.0, "m", 10.0, 1.6), (0.0, "s", 9.6, 1.5), (4.0, "m", 11.0, 1.3),
            (4.0, "s", 4.5, 2.8)]
    t = pd.DataFrame([{"w": w, "set": n, "images": 500, KID_RATIO: k, "colour TV / floor": c}
                      for w, n, k, c in rows])
    text = p1.sweep_look_text(t, {"m": "M", "s": "S"})
    assert "(n = 500 per set and w): KID 10.0–11.0× (M) and 4.5–9.6× (S); colour TV" in text
    assert "No w keeps every ratio of both sets within 2×." in text
    assert "Without guidance (w = 0) the ratios are already KID 10.0× and colour TV 1.6× for M," in text
    near = t.assign(**{KID_RATIO: [1.5, 1.9, 3.0, 1.0], "colour TV / floor": 1.2})
    text = p1.sweep_look_text(near, {"m": "M", "s": "S"})
    assert "Every ratio of both sets is within 2× at w = 0." in text and "Without" not in text
    # the grid's look on 100 per set against the sweep's 500 at the page's w
    grid = pd.DataFrame([{"digit set": lab, "classifier": "project CNN", "images": 100,
                          "KID": 0.001, "KID floor": 0.0, "KID floor sd": 0.001, KID_RATIO: k,
                          "colour TV / floor": c}
                         for lab, k, c in (("M", 0.3, 0.9), ("S", -0.3, 1.1))])
    text = p1.look_text(grid, larger=t, guidance=4.0, names={"m": "M", "s": "S"})
    # the larger draw's verdict leads; the grid's follows as what 100 images cannot show
    lead = ("**The verdict to read, on 500 images per set** (the guidance sweep below, at this "
            "w = 4): M KID 11.0×, colour TV 1.3×; S KID 4.5×, colour TV 2.8× (against the "
            "floor's upper level and the floor). Not within 2×: M KID, S KID, S colour TV")
    assert lead in text
    assert text.index(lead) < text.index("On the grid's own images alone: M (n = 100)")
    assert ("Every look statistic with a ratio is within 2× of its floor. At n = 100 that "
            "verdict cannot be read") in text and "can be one" not in text
    same = p1.look_text(grid, larger=near, guidance=0.0, names={"m": "M", "s": "S"})
    assert "drew 500 per set at this w = 0: it gives the same verdicts as these 100." in same
    alone = p1.look_text(grid)
    assert "verdict to read" not in alone and "(the guidance sweep below can be one)." in alone
    assert "verdict to read" not in p1.look_text(grid, larger=t, guidance=2.0, names={"m": "M"})

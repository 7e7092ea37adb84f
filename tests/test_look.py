"""KID against torchmetrics' KernelInceptionDistance and a direct numpy computation; the
mean-colour distance on sets whose answer is known."""
import numpy as np
import pytest
import torch

from hw2lib.classifier import DigitCNN
from hw2lib.look import colour_distance, kid, look_stats, mmd2_unbiased, poly_kernel


def feats(n, d=16, shift=0.0, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


def numpy_mmd2(x, y):
    """Binkowski et al. 2018, eq. 4, written out with loops over pairs (the reference)."""
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd2_matches_the_pairwise_sum():
    x, y = feats(12), feats(9, shift=0.3, seed=1)
    assert float(mmd2_unbiased(torch.tensor(x), torch.tensor(y))) == pytest.approx(
        numpy_mmd2(x, y), rel=1e-10)


def test_kid_matches_torchmetrics():
    tm = pytest.importorskip("torchmetrics.image.kid")
    real, fake = feats(60, seed=2), feats(50, shift=0.2, seed=3)
    r, f = torch.tensor(real), torch.tensor(fake)
    # the building blocks, on the same rows
    assert float(mmd2_unbiased(r[:40], f[:40])) == pytest.approx(
        float(tm.poly_mmd(r[:40], f[:40])), rel=1e-10)
    assert torch.allclose(poly_kernel(r, f), tm.poly_kernel(r, f))
    # the whole metric, with the same random subsets (same seed, same order of draws)
    metric = tm.KernelInceptionDistance(feature=torch.nn.Identity(), subsets=20, subset_size=40)
    metric.update(r, real=True)
    metric.update(f, real=False)
    torch.manual_seed(7)
    ref_mean, ref_std = metric.compute()
    torch.manual_seed(7)
    mean, std = kid(real, fake, subsets=20, subset_size=40)
    assert mean == pytest.approx(float(ref_mean), rel=1e-6)
    assert std == pytest.approx(float(ref_std), rel=1e-5)


def test_kid_near_zero_for_one_distribution_and_positive_for_two():
    a, b = feats(400, seed=4), feats(400, seed=5)
    g = torch.Generator().manual_seed(0)
    same, _ = kid(a, a, subsets=10, subset_size=200, generator=g)
    twin, twin_sd = kid(a, b, subsets=10, subset_size=200, generator=g)
    shifted, _ = kid(a, feats(400, shift=0.5, seed=5), subsets=10, subset_size=200, generator=g)
    # identical sets: slightly negative (the estimator drops the x-x diagonal but keeps the
    # x-y one, which for identical sets holds the largest kernel values): ~3% of a 0.5 shift
    assert abs(same) < 0.05 * shifted
    assert abs(twin) < 2 * twin_sd  # two draws of one distribution: 0 within the noise
    assert shifted > 10 * (abs(twin) + twin_sd)


def test_colour_distance():
    rng = np.random.default_rng(0)
    grey = rng.integers(100, 140, (50, 28, 28, 3), dtype=np.uint8)
    orange = np.zeros((50, 28, 28, 3), np.uint8)
    orange[..., 0], orange[..., 1] = 230, 140
    assert colour_distance(grey, grey) == 0.0
    assert colour_distance(grey, orange) == 1.0
    half = np.concatenate([grey[:25], orange[:25]])
    assert colour_distance(half, grey) == pytest.approx(0.5)


def test_look_stats_on_the_cnn():
    torch.manual_seed(0)
    model = DigitCNN().eval()
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (120, 28, 28, 3), dtype=np.uint8)
    test = rng.integers(0, 256, (60, 28, 28, 3), dtype=np.uint8)
    flat = np.full((40, 28, 28, 3), 200, np.uint8)
    s = look_stats(model, flat, test, train, subsets=5)
    assert s["KID subset"] == 40 and s["colour TV"] > 0.9
    assert s["KID"] > 10 * abs(s["KID floor"])
    same = look_stats(model, train[:40], test, train, subsets=5)
    assert same["colour TV"] < 0.5 and abs(same["KID"]) < s["KID"] / 10


def test_p1_score_look_columns_and_cli(tmp_path, monkeypatch, capsys):
    from hw2lib import cli, data, p1
    from hw2lib.classifier import save_classifier
    from hw2lib.data import DigitSet
    rng = np.random.default_rng(1)

    def fake(name):
        x = rng.integers(0, 256, (60, 28, 28, 3), dtype=np.uint8)
        y = np.arange(60) % 10
        return DigitSet(name, x, y, x[:30], y[:30], f"fp-{name}")

    sets = {"mnistm": fake("mnistm"), "svhn": fake("svhn")}
    digits = np.arange(20) % 10
    samples = {n: ds.x_train[:20] for n, ds in sets.items()}
    torch.manual_seed(0)
    clf = save_classifier(DigitCNN().eval(), tmp_path / "clf", {"note": "untrained"})
    table = p1.score_table(samples, digits, p1.scorers(clf),
                           look=p1.look_references(sets, p1.scorers(clf)["project CNN"]))
    assert {"KID", "KID floor", "colour TV", "colour TV floor", "colour TV / floor"} <= set(
        table.columns)
    assert table["KID"].notna().all()
    assert table["colour TV / floor"].tolist() == pytest.approx(
        (table["colour TV"] / table["colour TV floor"]).tolist())
    for name, imgs in samples.items():
        p1.write_grading_folder(tmp_path / "out", name, imgs, digits)
    monkeypatch.setattr(data, "load_digit_sets", lambda *a, **k: sets)
    assert cli.main(["p1", "score", str(tmp_path / "out"), "--classifier", str(clf),
                     "--look"]) == 0
    out = capsys.readouterr().out
    assert "look         mnistm   KID" in out and "mean-colour TV" in out


def test_table_cells_say_what_a_zero_se_and_a_negative_kid_mean():
    import pandas as pd

    from hw2lib.look import FORMATS, KID_RATIO, se_cell, with_notes
    assert se_cell(0.014) == "1.4%" and se_cell(0.0) == "0.0%"
    cell = FORMATS[KID_RATIO]
    assert cell(1.23) == "1.2×" and cell(-0.4) == "≤ 0" and cell(0.0) == "≤ 0"
    assert cell(float("nan")) == "–"
    plain = pd.DataFrame({"SE": [0.01, 0.02], KID_RATIO: [0.5, 3.0]})
    assert with_notes("cap", plain) == "cap"  # no cell that needs a word
    odd = pd.DataFrame({"SE": [0.0, 0.02], KID_RATIO: [0.5, -0.1]})
    text = with_notes("cap", odd)
    assert text.startswith("cap; SE 0.0%: no image misread")
    assert "≤ 0: KID at or below 0, as close" in text
    assert with_notes("cap", odd[["SE"]]).count(";") == 1  # only the note its columns need


def test_show_table_takes_the_cell_functions(monkeypatch):
    import re

    import IPython.display
    import pandas as pd

    from hw2lib.look import FORMATS, KID_RATIO
    from hw2lib.report import show
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda h: shown.append(h.data))
    show.table(pd.DataFrame({"accuracy": [1.0, 0.97], "SE": [0.0, 0.017],
                             KID_RATIO: [-0.1, float("nan")]}), formats=FORMATS)
    assert re.findall(r"<td[^>]*>([^<]*)</td>", shown[0]) == ["100.0%", "0.0%", "≤ 0",
                                                              "97.0%", "1.7%", "–"]


def test_reference_cache_returns_what_it_computed_and_keys_on_the_model(tmp_path):
    from hw2lib.look import reference
    rng = np.random.default_rng(0)
    test, train = (rng.integers(0, 256, (n, 28, 28, 3), dtype=np.uint8) for n in (30, 50))
    torch.manual_seed(0)
    a, b = DigitCNN(width=8).eval(), DigitCNN(width=8).eval()
    fresh = reference(a, test, train, pool=20, cache_dir=None)
    built = reference(a, test, train, pool=20, cache_dir=tmp_path)
    again = reference(a, test, train, pool=20, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 1
    for f in ("test_features", "pool_features", "test_bins", "train_bins"):
        assert np.array_equal(getattr(fresh, f), getattr(built, f))
        assert np.array_equal(getattr(built, f), getattr(again, f))
    other = reference(b, test, train, pool=20, cache_dir=tmp_path)  # other weights: a new file
    assert len(list(tmp_path.iterdir())) == 2
    assert not np.allclose(other.test_features, fresh.test_features)

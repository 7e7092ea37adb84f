import subprocess
import sys

import numpy as np
import pytest
import torch

from hw2lib import p2
from hw2lib.images import minmax, unit_to_uint8
from hw2lib.diffusion import linear_schedule
from hw2lib.nets.unet import UNetConfig, build_unet, eps_fn
from hw2_fixture import COURSE_UNET_PY

TINY_FACE = UNetConfig(sample_size=8, block_out_channels=(8, 16), layers_per_block=1,
                       down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
                       attention_head_dim=8)

@pytest.fixture(scope="module")
def tiny_face():
    torch.manual_seed(0)
    unet = build_unet(TINY_FACE).eval()
    noises = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    return unet, noises


def gaussian_eps(x, t, data_std=0.5, mean=0.2):
    """The exact eps-predictor for data ~ N(mean, data_std^2): a model that denoises (a random
    UNet does not, and amplifies float32-vs-float64 rounding step after step)."""
    ab = linear_schedule().alpha_bar.float()[t].view(-1, 1, 1, 1)
    var = ab * data_std ** 2 + 1 - ab
    return (1 - ab).sqrt() * (x - ab.sqrt() * mean) / var


def test_ddim_matches_diffusers_reference_on_0_255(tiny_face):
    noises = tiny_face[1]
    ours = p2.ddim_faces(gaussian_eps, noises)
    ref = p2.diffusers_reference(gaussian_eps, noises)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    mse = p2.mse_255(unit_to_uint8(minmax(ours)), unit_to_uint8(minmax(ref)))
    assert mse.max() < 1e-3


def test_the_two_conventions_differ(tiny_face):
    """Both alpha_bar conventions are selectable; only "t" reproduces the diffusers reference."""
    noises = tiny_face[1]
    ref = unit_to_uint8(minmax(p2.diffusers_reference(gaussian_eps, noises)))
    mse = {c: p2.mse_255(p2.sample_uint8(gaussian_eps, noises, convention=c), ref).mean()
           for c in p2.CONVENTIONS}
    assert mse["t"] < 1e-3 < mse["t-1"]
    with pytest.raises(ValueError, match="convention"):
        p2.ddim_faces(gaussian_eps, noises, convention="x")


def test_eta0_deterministic_and_eta_noise_seeded(tiny_face):
    unet, noises = tiny_face
    e = eps_fn(unet)
    torch.testing.assert_close(p2.ddim_faces(e, noises), p2.ddim_faces(e, noises), rtol=0, atol=0)
    a, b = p2.ddim_faces(e, noises, eta=1.0, seed=1), p2.ddim_faces(e, noises, eta=1.0, seed=1)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (p2.ddim_faces(e, noises, eta=1.0, seed=2) - a).abs().max() > 1e-3


def test_mse_against_plain_numpy():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    want = [np.mean((a[i].astype(float) - b[i].astype(float)) ** 2) for i in range(2)]
    np.testing.assert_allclose(p2.mse_255(a, b), want)
    with pytest.raises(ValueError, match="shapes differ"):
        p2.mse_255(a, b[:, :2])


def test_minmax_per_image():
    x = torch.stack([torch.linspace(-3, 5, 12).view(3, 2, 2), torch.full((3, 2, 2), 0.5)])
    x[1, 0, 0, 0] = 1.0
    y = minmax(x)
    assert y[0].min() == 0 and y[0].max() == 1 and y[1].min() == 0 and y[1].max() == 1


def test_noise_files_written_once_and_deterministic(tmp_path):
    paths = p2.write_noises(tmp_path, n=3, shape=(3, 8, 8), seed=4)
    mtimes = [p.stat().st_mtime_ns for p in paths]
    p2.write_noises(tmp_path, n=3, shape=(3, 8, 8), seed=4)
    assert [p.stat().st_mtime_ns for p in paths] == mtimes
    x, names = p2.load_noises(tmp_path)
    assert names == ["00", "01", "02"] and x.shape == (3, 3, 8, 8) and x.dtype == torch.float32
    assert torch.load(paths[0]).shape == (1, 3, 8, 8)


def test_interpolation_norms(tiny_face):
    unet, noises = tiny_face
    rows, table = p2.interpolation_rows(eps_fn(unet), noises[0:1], noises[1:2], [0, 0.5, 1])
    assert rows["slerp"].shape == (3, 8, 8, 3) and list(table[p2.ALPHA]) == [0, 0.5, 1]
    assert table[p2.norm_col("lerp")][1] < table[p2.norm_col("slerp")][1]
    np.testing.assert_allclose(table[p2.norm_col("slerp")][0], 1.0, rtol=1e-6)
    # the end points are the real noises: both paths draw the same faces there
    np.testing.assert_array_equal(rows["slerp"][[0, 2]], rows["lerp"][[0, 2]])
    assert (table[p2.std_col("lerp")] > 0).all() and (table[p2.detail_col("lerp")] > 0).all()
    assert "norm of only" in p2.interpolation_observation(table)


def _interp_table(lerp_std, lerp_detail):
    import pandas as pd
    a = np.round(np.linspace(0, 1, 5), 2)
    return pd.DataFrame({p2.ALPHA: a, p2.norm_col("slerp"): [1.0] * 5,
                         p2.norm_col("lerp"): [1, 0.79, 0.71, 0.79, 1],
                         p2.std_col("slerp"): [0.3] * 5, p2.std_col("lerp"): [0.3, *lerp_std, 0.3],
                         p2.detail_col("slerp"): [10.0] * 5,
                         p2.detail_col("lerp"): [10, *lerp_detail, 10],
                         "slerp against lerp: mean difference (0-255)": [0, 8, 12.5, 8, 0]})


def test_interpolation_observation_follows_the_measurements():
    """The prose says what the numbers say, whichever way they go, and where along alpha."""
    low = p2.interpolation_observation(_interp_table([0.15, 0.15, 0.3], [5, 5, 5]))
    assert "contrast (pixel standard deviation) is below the slerp faces' at α = 0.2–0.5 " \
           "(down to 50% of it, at α = 0.2) and within 5% of it at α = 0.8" in low
    assert "fine detail (mean absolute Laplacian) is below the slerp faces' at α = 0.2–0.8" in low
    assert "the lerp faces are smoother and lower in contrast, as expected." in low
    assert "12.5 grey levels" in low
    high = p2.interpolation_observation(_interp_table([0.45, 0.45, 0.45], [10, 10, 12]))
    assert "above it at α = 0.2–0.8 (up to 150%)" in high
    assert "unlike the expectation, over most of the path the lerp faces are neither" in high
    # the widest contrast gap away from the middle is named, at the middle it is not
    assert "widest at α = 0.2, not at α = 0.5" in low
    early = p2.interpolation_observation(_interp_table([0.15, 0.28, 0.3], [5, 5, 5]))
    assert "widest" not in p2.interpolation_observation(_interp_table([0.28, 0.15, 0.3], [5] * 3))
    assert "widest at α = 0.2" in early
    mixed = p2.interpolation_observation(_interp_table([0.3, 0.3, 0.3], [5, 5, 10]))
    assert "smoother, as expected, but not lower in contrast." in mixed


def test_eta_stats_and_observation():
    from hw2lib.p2.notebook import ETA_DIFF, ETA_GRAIN, ETA_LAYOUT
    rng = np.random.default_rng(0)
    # smooth grey "faces" of 3 noises, 16 x 16: plane waves in different directions
    y, x = np.mgrid[0:16, 0:16] / 16
    waves = [100 + 60 * np.sin(2 * np.pi * (np.cos(a) * x + np.sin(a) * y)) for a in (0, 2, 4)]
    faces = np.stack(waves)[None, ..., None].repeat(3, -1).round()
    grid = np.concatenate([faces, faces + 10, faces + 30]).astype(np.uint8)
    stats = p2.eta_stats(grid, [0.0, 0.5, 1.0])
    assert list(stats[ETA_DIFF]) == [0, 10, 30] and stats.attrs["channels_max"] == 0
    np.testing.assert_allclose(stats[ETA_LAYOUT], 1.0)
    np.testing.assert_allclose(stats[ETA_GRAIN], stats[ETA_GRAIN][0])
    text = p2.eta_observation(stats)
    assert "grows steadily with η" in text and "30.0 at η = 1" in text
    assert text.startswith("**Observation.** In short: η = 0 is deterministic, one face per noise")
    assert "(by 10.0 grey levels at η = 0.5, 30.0 at η = 1)" in text
    assert "at η = 0.5 the faces keep the layout" in text and "No face has a colour tint" in text
    assert "stay near the η = 0 level" in text
    # eta = 1 draws another noise's face, in colour, and eta = 0.5 adds grain: the prose says so
    other = np.roll(faces, 1, axis=1).astype(np.int16)
    other[..., 0] += 20
    grainy = faces + 30 + rng.integers(0, 40, faces.shape[:-1] + (1,))
    grid = np.concatenate([faces, grainy, other]).astype(np.uint8)
    stats = p2.eta_stats(grid, [0.0, 0.5, 1.0])
    text = p2.eta_observation(stats)
    assert "at η = 1 they keep none of it" in text and "η = 0.5 are the grainiest" in text
    assert "None of it is left" not in text  # no η between 0.5 and 1 to name
    assert "within the range" not in text  # η = 1's correlation is the between-noise mean itself
    low = stats.copy()
    low.attrs = {**stats.attrs, "layout_between_pairs": [-0.7, -0.5, -0.3]}
    low.loc[2, ETA_LAYOUT] = -0.6  # below the mean of the pairs, inside their range
    assert ("−0.60 is below the −0.50 but within the range of the 3 pairs of different noises it "
            "averages, −0.70 to −0.30") in p2.eta_observation(low)
    four = p2.eta_observation(p2.eta_stats(np.concatenate([faces, grainy, other, other])
                                           .astype(np.uint8), [0.0, 0.5, 0.75, 1.0]))
    assert "None of it is left from η = 0.75 on" in four
    # the last two rows are the same faces (one draw of the added noise decides them): said
    assert "The last two rows look alike (η = 0.75 and 1: 0.0 grey levels apart" in four
    assert "look alike" not in text  # 3 rows: the rows 0.5 and 1 differ as much as 1 and 0
    assert "colour tint" not in text and stats.attrs["channels_max"] == 20
    assert "most of it from one face" not in text  # every grainy face is grainy
    one = np.concatenate([faces, faces + 10, faces + 30]).astype(np.int16)
    one[1, 2] += rng.integers(0, 60, one[1, 2].shape[:-1] + (1,))  # eta = 0.5, third noise only
    text = p2.eta_observation(p2.eta_stats(one.clip(0, 255).astype(np.uint8), [0.0, 0.5, 1.0]),
                              names=["a", "b", "c"])
    assert "η = 0.5 are the grainiest" in text and "most of it from one face, noise c's" in text
    assert "that draw of the added noise" not in text  # no more draws measured: no claim
    # more draws of the added noise: noise c is grainy only in the grid's draw (draw 0)
    draws = np.full((3, 4, 3), 20.0)
    draws[1, 0, 2], draws[1, 1:, 2] = 45.0, [18.0, 21.0, 22.0]
    draws[2] = 15.0
    text = p2.eta_observation(p2.eta_stats(one.clip(0, 255).astype(np.uint8), [0.0, 0.5, 1.0],
                                           draws), names=["a", "b", "c"])
    assert ("It is that draw of the added noise, not noise c: over 4 draws of the added noise "
            "for each of the 3 noises, the faces at η = 0.5 have grain 20.0 in the median") in text
    assert "noise c's 4 range from 18.0 to 45.0" in text
    assert ("the 90th percentile of the grain is 21.9 at η = 0.5, 15.0 at η = 1 (the η = 0 faces, "
            "which add no noise, reach 20.0)") in text
    assert stats.attrs["tint_max"] == 20
    falling = np.concatenate([faces, faces + 10, faces + 5, faces + 30]).astype(np.uint8)
    assert "not steadily" in p2.eta_observation(p2.eta_stats(falling, [0.0, 0.25, 0.5, 1.0]))
    flat = np.concatenate([faces, faces + 20, faces + 21]).astype(np.uint8)
    assert "about the same at every η > 0" in p2.eta_observation(p2.eta_stats(flat, [0, 0.5, 1]))


@pytest.fixture
def course_module(tmp_path):
    path = tmp_path / "UNet.py"
    path.write_text(COURSE_UNET_PY)
    return path


def test_course_unet_loading_and_errors(hw2_data_pristine, course_module, tmp_path):
    eps = p2.load_course_unet(course_module, hw2_data_pristine / "face" / "UNet.pt")
    assert eps(torch.zeros(1, 3, 4, 4), torch.tensor([5])).shape == (1, 3, 4, 4)
    wrong = tmp_path / "wrong.pt"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match=r"missing keys \['w'\].*unexpected keys \['conv.weight'\]"):
        p2.load_course_unet(course_module, wrong)
    with pytest.raises(FileNotFoundError, match="UNet.pt"):
        p2.load_course_unet(course_module, tmp_path / "none.pt")


def test_course_setup_and_cli_end_to_end(hw2_data_pristine, course_module, tmp_path):
    s = p2.setup("course", data_dir=hw2_data_pristine, unet_module=str(course_module))
    assert s.noises.shape == (10, 3, 256, 256) and s.gt.shape == (10, 256, 256, 3)
    out = tmp_path / "out"
    face = hw2_data_pristine / "face"
    run = subprocess.run([sys.executable, "-m", "hw2lib", "p2", "sample", "--noise-dir",
                          str(face / "noise"), "--out", str(out), "--unet-ckpt",
                          str(face / "UNet.pt"), "--unet-module", str(course_module)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir())[:2] == ["00.png", "01.png"]
    mse = subprocess.run([sys.executable, "-m", "hw2lib", "p2", "mse", "--pred", str(out),
                          "--gt", str(face / "GT")], capture_output=True, text=True)
    assert mse.returncode == 0 and "mean:" in mse.stdout and "09.png:" in mse.stdout


def test_explorer_draws_for_any_setting():
    """The JupyterLab explorer (not executed by papermill runs) draws lerp and slerp."""
    import matplotlib
    matplotlib.use("Agg")
    noises = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    w = p2.explorer(gaussian_eps, noises)
    assert [c.description for c in w.kwargs_widgets] == ["eta", "alpha", "how"]
    w.f(eta=0.5, alpha=0.25, how="lerp")


def test_mse_in_grey_levels_matches_an_image_one_level_off():
    """The words for an MSE are checked against images built to have it: one value in 1,000
    one grey level off gives 'one pixel value in 1,000'; every value 5 levels off gives a root of
    5.0."""
    from hw2lib.p2.observe import mse_in_grey_levels
    gt = np.full(3000, 100, np.uint8)
    pred = gt.copy()
    pred[:3] += 1
    mse = float(((pred.astype(float) - gt) ** 2).mean())
    assert "one pixel value in 1,000 " in mse_in_grey_levels(mse)
    assert "5.0 grey levels" in mse_in_grey_levels(float(((gt + 5.0 - gt) ** 2).mean()))
    assert mse_in_grey_levels(0.0).startswith("Every pixel value equals")


def test_mse_table_counts_the_values_that_differ():
    """The ground truth is our own DDIM output with two values of face 1 one level up: the
    first column's MSE is 2 / values per face there and 0 elsewhere, the count column says 2,
    and the other convention's column differs."""
    from hw2lib.p2.notebook import differ_col, mse_table, table_formats
    noises = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    gt = p2.sample_uint8(gaussian_eps, noises, convention="t", steps=10).copy()
    gt[1].reshape(-1)[[0, 5]] = np.minimum(gt[1].reshape(-1)[[0, 5]], 254) + 1
    s = p2.FaceSetup(gaussian_eps, noises, ["00", "01", "02"], gt, "test", "gaussian")
    df = mse_table(s, convention="t", steps=10)
    first, other, count = df.columns
    assert count == differ_col(192) == "8-bit values that differ, of 192 per image (first column)"
    assert list(df[count]) == [0, 2, 0, 2 / 3]
    np.testing.assert_allclose(df[first], [0, 2 / 192, 0, 2 / 576])
    assert df.loc["mean", other] > df.loc["mean", first]
    assert table_formats(df)[count] == "{:,.6g}"  # counts as integers, a mean of ten to 0.1


def test_grain_draws_first_draw_is_the_grids():
    """Draw 0 of grain_draws is the eta grid's own face; other draws differ at eta > 0 and not
    at eta = 0 (no added noise)."""
    from hw2lib.p2.notebook import _detail, grain_draws
    noises = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    etas = [0.0, 1.0]
    g = grain_draws(gaussian_eps, noises, etas, draws=3, steps=10)
    grid = p2.eta_grid(gaussian_eps, noises, etas, steps=10)
    assert g.shape == (2, 3, 2)
    np.testing.assert_allclose(g[:, 0], _detail(grid))
    assert np.all(g[0] == g[0, :1]) and not np.allclose(g[1, 1], g[1, 0])


def test_nearest_training_tells_a_copy_from_a_new_face():
    """A generated face that is a training face gives distance 0 and is called close to a copy;
    a face's own mirror image does not count as its nearest other training face."""
    from hw2lib.p2.notebook import nearest_training
    from hw2lib.p2.observe import copies_text
    rng = np.random.default_rng(0)
    base = torch.from_numpy(rng.uniform(-1, 1, (6, 1, 8, 8)).astype(np.float32))
    train = torch.cat([base, base.flip(-1)])  # the faces and their mirrors
    def as_grid(x):  # uint8 (N, H, W, 3) grey images, as the eta grid holds them
        u8 = ((x[:, 0].numpy() + 1) * 127.5).round().astype(np.uint8)
        return np.repeat(u8[..., None], 3, -1)
    other = torch.from_numpy(rng.uniform(-1, 1, (2, 1, 8, 8)).astype(np.float32))
    grid = np.stack([as_grid(base[:2]), as_grid(other)])
    near = nearest_training(grid, train, mirrored=True)
    assert near["faces"].shape == (2, 2) and near["faces"][0].max() < 3.0  # copies: ~0 (8-bit)
    assert near["faces"][1].min() > 20  # random images are far from every training face
    symmetric = torch.cat([base + base.flip(-1)] * 2) / 2  # each face equal to its own mirror
    assert nearest_training(grid, symmetric, mirrored=True)["train"].min() > 1.0
    assert nearest_training(grid, symmetric)["train"].min() < 1e-3  # without: the mirror
    text = copies_text(near, [0.0, 1.0])
    assert "close to a copy" in text and "between the 12 training images" in text
    assert "our line for a near copy" in text  # the threshold is named with its value
    far = copies_text({"faces": near["faces"][1:], "train": near["train"]}, [1.0])
    assert "none is within half that" in far and "close to a copy" not in far


def test_grain_trend_says_what_its_percentiles_do():
    """Steadily falling, falling then level, and rising again are each worded as measured."""
    import pandas as pd

    from hw2lib.p2.observe import ETA, _grain_trend

    def stats(p90s):  # one draw per face: the 90th percentile of a constant row is that value
        s = pd.DataFrame({ETA: [0.0, 0.25, 0.5, 0.75, 1.0]})
        s.attrs["grain_draws"] = [[[v] * 4] for v in p90s]
        return s
    assert "grainy faces thin out as η grows:" in _grain_trend(stats([30, 40, 30, 25, 20]))
    level = _grain_trend(stats([34.1, 39.9, 28.6, 23.9, 24.3]))
    assert "thin out as η grows to 0.75 and then stay about level" in level
    assert "(the η = 0 faces, which add no noise, reach 34.1)" in level
    assert "do not thin out steadily" in _grain_trend(stats([30, 40, 20, 35, 30]))

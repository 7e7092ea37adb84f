import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from hw2lib import p1
from hw2lib.classifier import (CourseLeNet, DigitCNN, load_course_classifier, save_classifier)
from hw2lib.data import DigitSet
from hw2lib.images import to_uint8
from hw2lib.diffusion import linear_schedule
from hw2lib.nets.unet import UNetConfig, build_unet
from hw2lib.errors import StaleStateError
from hw2lib.train import TrainConfig, train_eps_model

TINY = UNetConfig(sample_size=28, block_out_channels=(8, 16), layers_per_block=1,
                  down_block_types=("DownBlock2D", "DownBlock2D"),
                  up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4, attention_head_dim=8,
                  num_class_embeds=21)


def fake_set(name, n=20, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 28, 28, 3), dtype=np.uint8)
    y = np.arange(n) % 10
    return DigitSet(name, x, y, x[:10], y[:10], f"fp-{name}")


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("p1") / "ckpt"
    sets = {"mnistm": fake_set("mnistm"), "svhn": fake_set("svhn", seed=1)}
    p1.train(sets, out, TrainConfig(steps=4, batch_size=4, save_every=2, warmup=2),
             unet_cfg=TINY, command="test", progress=False)
    return out


def test_train_exports_checkpoint_with_manifest(tiny_ckpt):
    files = {p.name for p in tiny_ckpt.iterdir()}
    assert {"model.safetensors", "config.json", "manifest.json", "loss.json"} <= files
    man = json.loads((tiny_ckpt / "manifest.json").read_text())
    assert man["steps_done"] == 4 and man["data_fingerprints"] == {"mnistm": "fp-mnistm",
                                                                  "svhn": "fp-svhn"}
    assert man["train_config"]["steps"] == 4 and man["n_train_images"] == 40


def test_min_snr_training_is_recorded_and_changes_the_run(tiny_ckpt, tmp_path):
    """train p1 --snr-gamma: the same seed and batches with Min-SNR weighting give other
    weights, and the manifest says how the run was weighted (gamma 0.05 down-weights every t
    below 547, so a 4-step run's batches are certainly reweighted)."""
    sets = {"mnistm": fake_set("mnistm"), "svhn": fake_set("svhn", seed=1)}
    cfg = TrainConfig(steps=4, batch_size=4, save_every=2, warmup=2, snr_gamma=0.05)
    out = p1.train(sets, tmp_path / "snr", cfg, unet_cfg=TINY, command="test", progress=False)
    assert json.loads((out / "manifest.json").read_text())["train_config"]["snr_gamma"] == 0.05
    assert json.loads((tiny_ckpt / "manifest.json").read_text())["train_config"]["snr_gamma"] == 0
    unet, _, _ = p1.load(out)  # P1.1 says how the loss was weighted, read from the manifest
    assert "weighted by Min-SNR-γ (Hang et al. 2023, γ = 0.05)" in p1.network_text(
        p1.describe(unet, out))
    assert "Min-SNR" not in p1.network_text(p1.describe(unet, tiny_ckpt))
    from safetensors.torch import load_file
    a, b = load_file(out / "model.safetensors"), load_file(tiny_ckpt / "model.safetensors")
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)
    # resuming the run with another weighting is refused, not silently mixed
    with pytest.raises(StaleStateError, match="another config"):
        p1.train(sets, out, replace(cfg, steps=6, snr_gamma=0.0), unet_cfg=TINY, progress=False)


def test_per_set_null_labels_train_and_guide_with_the_sets_own_null(tiny_ckpt, tmp_path,
                                                                     monkeypatch):
    """--guidance-null per-set: 22 label embeddings; a dropped label becomes its set's null
    (20 + set index); sampling a set guides against that null; a shared-null checkpoint keeps
    20 for both sets."""
    from hw2lib.p1 import model as m
    assert m.null_labels("shared") == [20] * 20
    assert m.null_labels("per-set") == [20] * 10 + [21] * 10
    with pytest.raises(ValueError, match="guidance null"):
        m.null_labels("global")
    seen = []  # every label batch the UNet sees in training
    import hw2lib.train.eps as eps_mod
    real = eps_mod.eps_loss

    def spy(eps_model, schedule, x0, **kw):
        seen.append(kw["class_labels"].clone())
        return real(eps_model, schedule, x0, **kw)
    monkeypatch.setattr(eps_mod, "eps_loss", spy)
    sets = {"mnistm": fake_set("mnistm"), "svhn": fake_set("svhn", seed=1)}
    cfg = TrainConfig(steps=30, batch_size=8, save_every=100, warmup=2, p_uncond=0.5,
                      guidance_null="per-set")
    out = p1.train(sets, tmp_path / "perset", cfg, unet_cfg=TINY, progress=False)
    monkeypatch.undo()
    labels = torch.cat(seen)
    assert {20, 21} <= set(labels.tolist()) and labels.max() == 21  # both nulls, no other
    unet, schedule, _ = p1.load(out)
    assert unet.config.num_class_embeds == 22
    assert (m.null_label(unet, "mnistm"), m.null_label(unet, "svhn")) == (20, 21)
    shared, _, _ = p1.load(tiny_ckpt)
    assert (m.null_label(shared, "mnistm"), m.null_label(shared, "svhn")) == (20, 20)
    # P1.1 says which null the network was trained with, read from its manifest
    assert "one null label per set" in p1.network_text(p1.describe(unet, out))
    assert "amplifies the digit alone" in p1.network_text(p1.describe(unet, out))
    assert "the set's look together" in p1.network_text(p1.describe(shared, tiny_ckpt))
    calls = []
    monkeypatch.setattr(m, "classifier_free_guidance",
                        lambda f, w, cond_key, null_value: calls.append(null_value) or f)
    p1.sample(unet, schedule, "svhn", [3], sampler="ddim", steps=2, w=2.0)
    assert calls == [21]


def test_class_labels():
    assert p1.class_label("mnistm", 3) == 3 and p1.class_label("svhn", 3) == 13
    assert p1.NULL_LABEL == 20


def test_load_and_sample_both_samplers(tiny_ckpt):
    unet, schedule, cfg = p1.load(tiny_ckpt)
    assert cfg["sets"] == ["mnistm", "svhn"]
    imgs, traj = p1.sample(unet, schedule, "svhn", [0, 1, 2], steps=3, w=1.0, seed=0,
                           record=[666, 0])
    assert imgs.shape == (3, 28, 28, 3) and imgs.dtype == np.uint8 and sorted(traj) == [0, 666]
    again, _ = p1.sample(unet, schedule, "svhn", [0, 1, 2], steps=3, w=1.0, seed=0)
    np.testing.assert_array_equal(imgs, again)



def test_ddpm_with_fewer_steps_is_ancestral_sampling_on_the_strided_grid(tiny_ckpt):
    """sampler="ddpm" with steps < T walks DDIM's grid with eta = 1: seeded, so repeatable, and
    stochastic, so unlike DDIM's eta = 0 from the same noise; T steps stay the full chain."""
    unet, schedule, _ = p1.load(tiny_ckpt)
    assert p1.sampler_steps(schedule, "ddpm", 10) == p1.sampler_steps(schedule, "ddim", 10)
    assert len(p1.sampler_steps(schedule, "ddpm", 1000)) == 1000
    digits = np.arange(4)
    a, _ = p1.sample(unet, schedule, "mnistm", digits, sampler="ddpm", steps=5, w=1.0, seed=2)
    b, _ = p1.sample(unet, schedule, "mnistm", digits, sampler="ddpm", steps=5, w=1.0, seed=2)
    c, _ = p1.sample(unet, schedule, "mnistm", digits, sampler="ddim", steps=5, w=1.0, seed=2)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 1


def test_reverse_process_ends_in_the_grids_first_zero(tiny_ckpt):
    """P1.3: the strip is the trajectory of the grid's own first 0, not a fresh sample: its
    last frame is that grid image, its first the grid's starting noise."""
    unet, schedule, _ = p1.load(tiny_ckpt)
    shown = p1.reverse_steps(schedule, "ddim", 10)
    assert shown == [900, 500, 300, 200, 100] and len(shown) + 1 == 6
    ab = schedule.alpha_bar
    snr = ab / (1 - ab)
    full = p1.reverse_steps(schedule, "ddpm", 1000)
    assert full[0] == 999 and all(snr[t] >= s > snr[t + 1]
                                  for t, s in zip(full[1:], (1 / 16, 0.25, 1.0, 4.0)))
    digits = np.repeat(np.arange(10), 2)
    grid, traj = p1.sample(unet, schedule, "mnistm", digits, steps=10, w=1.0, seed=3, record=shown)
    frames, labels = p1.reverse_frames(traj, grid, index=0)
    assert frames.shape == (6, 28, 28, 3) and labels[0] == "$x_T$ (first step, $t$ = 900)"
    assert labels[1].startswith("$t$ = ") and "grid" in labels[-1]
    np.testing.assert_array_equal(frames[-1], grid[0])
    predicted = p1.predicted_x0_frames(unet, schedule, "mnistm", 0, traj, w=1.0)
    assert predicted.shape == (5, 28, 28, 3) and predicted.dtype == np.uint8
    x_T = p1.grid_noise(20, seed=3)[0:1]
    np.testing.assert_array_equal(frames[0], to_uint8(x_T)[0])
    # the grid's first column is the same image when drawn alone from its own noise
    alone, _ = p1.sample(unet, schedule, "mnistm", [0], steps=10, w=1.0, seed=3, noise=x_T)
    np.testing.assert_allclose(alone[0].astype(int), grid[0].astype(int), atol=1)


def test_guidance_sweep_reuses_the_grid_at_its_w(tiny_ckpt):
    unet, schedule, _ = p1.load(tiny_ckpt)
    digits = np.repeat(np.arange(10), 3)
    grid, _ = p1.sample(unet, schedule, "svhn", digits, steps=2, w=2.0, seed=5)
    clf = DigitCNN().eval()
    table, images = p1.guidance_sweep(unet, schedule, ["svhn"], [0.0, 2.0], clf, per_digit=2,
                                      n_cols=3, steps=2, seed=5, known={(2.0, "svhn"): grid})
    assert list(table.index) == [0.0, 2.0] and images[(0.0, "svhn")].shape == (20, 28, 28, 3)
    np.testing.assert_array_equal(images[(2.0, "svhn")], grid[p1.sweep_columns(3, 2)])
    redrawn, _ = p1.guidance_sweep(unet, schedule, ["svhn"], [2.0], clf, per_digit=2, n_cols=3,
                                   steps=2, seed=5)
    np.testing.assert_allclose(redrawn.loc[2.0, "svhn"], table.loc[2.0, "svhn"])


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="make checkpoints"):
        p1.load(tmp_path / "nope")


def test_training_resumes_to_the_same_weights(tmp_path):
    """A run stopped after one step and restarted ends where an uninterrupted run ends."""
    x = torch.rand(16, 3, 28, 28) * 2 - 1
    y = torch.arange(16) % 10
    cfg = TrainConfig(steps=4, batch_size=4, save_every=100, warmup=2)

    def run(out, max_minutes=None):
        torch.manual_seed(0)
        model = build_unet(TINY)
        c = TrainConfig(**{**cfg.__dict__, "max_minutes": max_minutes})
        r = train_eps_model(model, linear_schedule(), x, y, c, out, null_label=20,
                            progress=False)
        return r.ema, r.model, r.history, r.wall

    full, _, hist_full, _ = run(tmp_path / "a")
    stopped, _, hist_stop, _ = run(tmp_path / "b", max_minutes=0.0)
    assert len(hist_stop["loss"]) == 1
    resumed, _, hist_res, _ = run(tmp_path / "b")
    assert hist_res["loss"] == pytest.approx(hist_full["loss"], rel=1e-5)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # a finished run can be extended: 4 more steps continue from step 4
    torch.manual_seed(0)
    more = TrainConfig(**{**cfg.__dict__, "steps": 8})
    hist_more = train_eps_model(build_unet(TINY), linear_schedule(), x, y, more,
                                tmp_path / "b", null_label=20, progress=False).history
    assert len(hist_more["loss"]) == 8 and hist_more["loss"][:4] == hist_res["loss"]
    # another config (here the learning rate) is refused
    with pytest.raises(RuntimeError, match="another config"):
        train_eps_model(build_unet(TINY), linear_schedule(), x, y,
                        TrainConfig(**{**cfg.__dict__, "lr": 1.0}), tmp_path / "b",
                        null_label=20, progress=False)


def test_grading_folder_round_trip(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 3), dtype=np.uint8)
    folder = p1.write_grading_folder(tmp_path, "mnistm", imgs, [0, 0, 7, 9])
    assert sorted(p.name for p in folder.iterdir()) == ["0_001.png", "0_002.png", "7_001.png",
                                                        "9_001.png"]
    x, y = p1.read_grading_folder(folder)
    assert y.tolist() == [0, 0, 7, 9] and x.shape == (4, 28, 28, 3)


def test_course_classifier_loading(tmp_path):
    good = tmp_path / "Classifier.pth"
    torch.save({"state_dict": CourseLeNet().state_dict()}, good)
    assert isinstance(load_course_classifier(good), CourseLeNet)
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": DigitCNN().state_dict()}, bad)
    with pytest.raises(ValueError, match="missing keys"):
        load_course_classifier(bad)
    with pytest.raises(FileNotFoundError, match="Classifier.pth"):
        load_course_classifier(tmp_path / "none.pth")


def test_cli_sample_and_score(tiny_ckpt, tmp_path):
    clf = save_classifier(DigitCNN().eval(), tmp_path / "clf", {"note": "untrained"})
    lenet = tmp_path / "Classifier.pth"
    torch.save({"state_dict": CourseLeNet().state_dict()}, lenet)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "hw2lib", "p1", "sample", "--out", str(out),
                          "--ckpt", str(tiny_ckpt), "--n-per-digit", "2", "--steps", "2"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert len(list((out / "svhn").glob("*.png"))) == 20 and (out / "mnistm" / "9_002.png").exists()
    score = subprocess.run([sys.executable, "-m", "hw2lib", "p1", "score", str(out),
                            "--classifier", str(clf), "--course-classifier", str(lenet)],
                           capture_output=True, text=True)
    assert score.returncode == 0, score.stderr
    assert "project CNN  average" in score.stdout and "course LeNet mnistm" in score.stdout


def test_signal_requests_a_clean_stop():
    import os
    import signal
    from hw2lib.train.loop import _StopOnSignal
    before = signal.getsignal(signal.SIGTERM)
    stop = _StopOnSignal()
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.requested
    stop.restore()
    assert signal.getsignal(signal.SIGTERM) is before


def test_interrupted_training_saves_the_step_it_finished(tmp_path, monkeypatch):
    """A signal stops training after the current step, which is saved; the run then raises
    (exit code 128 + signal), so its caller exports nothing."""
    from hw2lib.train import loop as train_mod
    from hw2lib.errors import TrainingInterrupted
    monkeypatch.setattr(train_mod._StopOnSignal, "requested", True, raising=False)
    monkeypatch.setattr(train_mod._StopOnSignal, "__init__",
                        lambda self: self.__dict__.update(_old={}, signum=15))
    x, y = torch.rand(8, 3, 28, 28) * 2 - 1, torch.arange(8) % 10
    with pytest.raises(TrainingInterrupted) as e:
        train_eps_model(build_unet(TINY), linear_schedule(), x, y,
                        TrainConfig(steps=5, batch_size=4, save_every=100, warmup=2),
                        tmp_path, null_label=20, progress=False)
    assert e.value.exit_code == 143
    assert torch.load(tmp_path / "train_state.pt", weights_only=True)["step"] == 1


def test_explorer_draws_for_any_setting(tiny_ckpt):
    """The JupyterLab explorer (not executed by papermill runs): four controls, and its drawing
    function works for a setting other than the default."""
    import matplotlib
    matplotlib.use("Agg")
    unet, schedule, cfg = p1.load(tiny_ckpt)
    w = p1.explorer(unet, schedule, cfg["sets"], n=2)
    assert [c.description for c in w.kwargs_widgets] == ["w", "digit", "set_name", "steps"]
    w.f(w=1.0, digit=7, set_name="svhn", steps=2)


def test_sampler_curve_measures_writes_and_refuses_another_checkpoint(tiny_ckpt, tmp_path):
    """p1.curve: one row per (setting, set) from the same noises; the file names its checkpoint
    and a changed checkpoint is refused; the prose picks by the P1 rule."""
    import shutil

    import matplotlib
    matplotlib.use("Agg")
    from hw2lib.p1 import curve
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_ckpt, ckpt)
    unet, schedule, cfg = p1.load(ckpt)
    clf = DigitCNN().eval()
    sets = {"mnistm": fake_set("mnistm"), "svhn": fake_set("svhn", seed=1)}
    refs = p1.look_references(sets, clf)
    settings = (("ddim", 2), ("ddim", 4), ("dpmpp", 2))
    table = curve.measure(unet, schedule, cfg["sets"], clf, refs, settings=settings,
                          per_digit=1, w=1.0, progress=False)
    assert len(table) == 6 and list(table.evaluations[:2]) == [4, 4]  # 2 steps, guided: 4
    assert set(table.images) == {10} and {"colour TV / floor", "KID"} <= set(table.columns)
    assert curve.read(ckpt) is None
    from hw2lib.classifier import save_classifier
    clf_dir = save_classifier(clf, tmp_path / "cnn", {})
    curve.write(ckpt / curve.CURVE_FILE, table, ckpt=ckpt, command="p1 curve", w=1.0,
                per_digit=1, seed=0, classifier=clf_dir)
    back, meta = curve.read(ckpt, classifier=clf_dir)
    assert len(back) == 6 and meta["w"] == 1.0 and meta["command"] == "p1 curve"
    text = curve.text(back, meta, sampler="ddim", steps=4)
    summ = curve.summary(back)
    assert "The P1 rule" in text and f"{summ.images[0]:,})" in text
    assert list(curve.view(back).columns)[-1] == "wall s per 100"
    fig = curve.figure(back, {"mnistm": "M", "svhn": "S"})
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "DDIM (η = 0), M" in labels and "DPM-Solver++(2M), S" in labels
    # a setting added later, on fewer images: merged, and the prose says its n
    more = curve.measure(unet, schedule, cfg["sets"], clf, refs, settings=(("ddpm", 3),
                         ("ddim", 4), ("ddim-clipped-eps", 4)), per_digit=2, w=1.0,
                         progress=False)
    both = curve.merge(back, more)
    assert len(both) == 10 and set(both[both.steps == 4].images) == {20}  # ddim-4 replaced
    # 20 per set is now the commoner count: the settings measured on 10 are named
    text = curve.text(both, meta, sampler="ddim", steps=4)
    assert ("on 20 images per set and setting, 10 with the 2-step DDIM and 10 with the 2-step "
            "DPM-Solver++(2M), at") in text
    # another digit CNN than the one that scored it is refused
    other = save_classifier(DigitCNN().eval(), tmp_path / "cnn2", {})
    with pytest.raises(ValueError, match="another digit CNN"):
        curve.read(ckpt, classifier=other)
    man = json.loads((ckpt / "manifest.json").read_text())
    (ckpt / "manifest.json").write_text(json.dumps({**man, "made": "another day"}))
    with pytest.raises(ValueError, match="another checkpoint"):
        curve.read(ckpt)


def test_sampler_curve_text_measures_the_clamp_when_many_steps_lose():
    """Where DDIM loses accuracy at many steps and the curve has DDIM with eps re-derived from
    the clamped x0-hat at that step count, the prose reports it instead of a guess."""
    import pandas as pd

    from hw2lib.look import KID_RATIO
    from hw2lib.p1 import curve
    rows = [("ddim", 10, 0.98), ("ddim", 50, 0.98), ("ddim", 100, 0.65),
            ("ddim-clipped-eps", 100, 0.91)]
    table = pd.DataFrame([{"sampler": a, "steps": k, "evaluations": 2 * k, "set": s,
                           "images": 200, "accuracy": acc, "colour TV / floor": 2.0,
                           KID_RATIO: 1.0, "seconds": 1.0}
                          for a, k, acc in rows for s in ("mnistm", "svhn")])
    meta = {"w": 4.0, "cpu": "cpu", "made": "2026-11-26", "command": "c"}
    text = curve.text(table, meta, sampler="ddim", steps=10)
    assert "100 steps read 91.0% ± 1.4 (n = 400) instead of 65.0%" in text
    assert "A likely reading" not in text
    guess = curve.text(table[table.sampler == "ddim"], meta, sampler="ddim", steps=10)
    assert "A likely reading" in guess and "use_clipped_model_output" not in guess


def test_sampler_curve_text_says_why_the_solver_reads_below_ddim():
    """DPM-Solver++ below DDIM's best: the prose names the clamp, and the clamped-eps DDIM row at
    the solver's step count says whether it is the explanation; no prose when the solver is
    within two SEs of DDIM."""
    import pandas as pd

    from hw2lib.look import KID_RATIO
    from hw2lib.p1 import curve

    def table(rows):
        return pd.DataFrame([{"sampler": a, "steps": k, "evaluations": 2 * k, "set": s,
                              "images": 200, "accuracy": acc, "colour TV / floor": 1.0,
                              KID_RATIO: 1.0, "seconds": 1.0}
                             for a, k, acc in rows for s in ("mnistm", "svhn")])
    meta = {"w": 2.0, "cpu": "cpu", "made": "2026-11-26", "command": "c"}
    rows = [("ddim", 25, 0.99), ("dpmpp", 5, 0.985), ("dpmpp", 25, 0.95)]
    text = curve.text(table(rows + [("ddim-clipped-eps", 25, 0.955)]), meta, sampler="ddim",
                      steps=25)
    assert "DPM-Solver++(2M) with 25 steps reads 95.0% ± 1.1, below DDIM's best" in text
    assert "That DDIM variant at 25 steps reads 95.5% ± 1.0" in text and "converge" in text
    other = curve.text(table(rows + [("ddim-clipped-eps", 25, 0.99)]), meta, sampler="ddim",
                       steps=25)
    assert "the clamp does not explain the gap" in other
    assert "That DDIM variant" not in curve.text(table(rows), meta, sampler="ddim", steps=25)
    close = curve.text(table([("ddim", 25, 0.99), ("dpmpp", 25, 0.985)]), meta, sampler="ddim",
                       steps=25)
    assert "DPM-Solver++(2M) with" not in close


def test_accuracy_text_gives_the_judges_own_accuracy_with_its_error():
    import pandas as pd
    table = pd.DataFrame([{"digit set": "MNIST-M-like", "classifier": "project CNN",
                           "images": 100, "accuracy": 0.98}])
    text = p1.accuracy_text(table, {"mnistm": 0.97, "svhn": 1.0}, "embedded",
                            {"mnistm": 1000, "svhn": 1000})
    assert "98.0% ± 1.4 (n = 100) of the MNIST-M-like samples" in text
    assert "97.0% ± 0.5 (n = 1,000) on MNIST-M-like" in text
    assert "100.0% (n = 1,000; no error: its rate is below 0.3% at 95% confidence)" in text
    assert "(± one standard error)" in text and "the CNN's own mistakes" in text
    perfect = p1.accuracy_text(table.assign(accuracy=1.0), {"mnistm": 0.97}, "embedded")
    assert "(± one standard error)" not in perfect and "own mistakes" not in perfect
    assert "could still be one a person would misread" in perfect


def test_sweep_text_names_the_best_once_and_which_set_falls():
    import pandas as pd
    t = pd.DataFrame({"mnistm": [0.7, 0.99, 0.93], "svhn": [0.68, 0.95, 0.98]},
                     index=[0.0, 4.0, 6.0])
    text = p1.sweep_text(t, 4.0, 100, {"mnistm": "M", "svhn": "S"})
    assert "S: 68.0% at w = 0, best 98.0% at w = 6)" in text  # not "98.0% at w = 6" twice
    assert "M: 70.0% at w = 0, best 99.0% at w = 4, 93.0% at w = 6" in text
    assert "falls again for M (6.0 points below its best, SE of the difference 2.7): at w = 6" in text
    assert "S is at its best at w = 6" in text and "dip" not in text
    # 500 per point: 99.0% -> 97.8% is 1.2 points, SE 0.8: a dip, not a fall
    t = pd.DataFrame({"mnistm": [0.8, 0.99, 0.978], "svhn": [0.79, 1.0, 1.0]},
                     index=[0.0, 4.0, 6.0])
    text = p1.sweep_text(t, 4.0, 500, {"mnistm": "M", "svhn": "S"})
    assert "at w = 6 M (1.2 points below its best, SE of the difference 0.8) dips by less than two" in text
    assert "falls" not in text and "over-sharpen" not in text
    flat = p1.sweep_text(t[["svhn"]], 4.0, 500, {"svhn": "S"})
    assert "it stays at its best up to w = 6." in flat


def test_reverse_text_reads_the_predictions_distance_to_the_final_image():
    schedule = linear_schedule()
    shown = p1.reverse_steps(schedule, "ddim", 10)
    final = np.full((28, 28, 3), 100, np.uint8)
    frames = np.stack([final + 80, final + 5, final + 2, final + 1, final])
    d = p1.distance_to_final(frames, final)
    assert d == [80.0, 5.0, 2.0, 1.0, 0.0]
    text = p1.reverse_text(schedule, shown, {"M": d, "S": [90.0, 30.0, 9.0, 2.0, 0.0]})
    assert "M: 80.0, 5.0, 2.0, 1.0, 0.0; S: 90.0, 30.0" in text
    assert "by $t = 500$ the prediction for M is already close" in text  # S is not
    assert "blurred" not in p1.reverse_text(schedule, shown)


def test_sampler_curve_rule_gives_a_perfect_score_an_error():
    """At 100% the plain SE is 0 and would leave no other setting beside a perfect pick; the
    rule's Agresti-Coull SE (0.35 points at n = 400) keeps 99.75% within it, and the better
    colour ratio then wins. Negative control: 99.25% stays out."""
    import pandas as pd

    from hw2lib.look import KID_RATIO
    from hw2lib.p1 import curve

    def table(second):
        rows = [(s, n, name, acc) for s, n, accs in (("ddpm", 10, (1.0, 1.0)),
                                                      ("ddpm", 20, second))
                for name, acc in zip(("mnistm", "svhn"), accs)]
        return pd.DataFrame([{"sampler": s, "steps": n, "evaluations": 2 * n, "set": name,
                              "images": 200, "accuracy": acc,
                              "SE": (acc * (1 - acc) / 200) ** 0.5,
                              "colour TV / floor": 1.4 if n == 10 else 1.2, KID_RATIO: 1.0,
                              "seconds": 1.0} for s, n, name, acc in rows])
    meta = {"w": 2.0, "cpu": "CPU", "made": "2026-11-26 10:00:00"}
    text = curve.text(table((1.0, 0.995)), meta, sampler="ddpm", steps=20)
    assert "here at least 99.65%; then the best colour ratio) picks **DDPM" in text
    assert ("with 20 steps**: 99.8% ± 0.2 (n = 400), colour TV 1.2× its floor, KID 1.0× its "
            "floor's upper level. That is this page's sampler.") in text
    out = curve.text(table((1.0, 0.985)), meta, sampler="ddpm", steps=20)
    assert "with 10 steps**: 100.0% (no error, n = 400), colour TV 1.4×" in out
    assert "This page uses DDPM (ancestral; strided below 1000 steps) with 20 steps: 99.2%" in out

def test_sample_batching_default_and_what_it_leaves_unchanged(tiny_ckpt):
    """The CPU default batch is BATCH["cpu"]; a draw that fits one batch (the report's 100-per-set
    grids) is the same image for image at any larger batch size, DDPM noise included, while a
    draw split differently gets other DDPM noise (why the stored sweeps keep STORED_BATCH)."""
    from hw2lib.p1.model import BATCH, STORED_BATCH
    unet, schedule, _ = p1.load(tiny_ckpt)
    digits = np.arange(12) % 10
    kw = dict(sampler="ddpm", steps=3, w=1.0, seed=0)
    ref, _ = p1.sample(unet, schedule, "mnistm", digits, batch_size=STORED_BATCH, **kw)
    assert BATCH["cpu"] >= 100 > len(digits)
    np.testing.assert_array_equal(p1.sample(unet, schedule, "mnistm", digits, **kw)[0], ref)
    split, _ = p1.sample(unet, schedule, "mnistm", digits, batch_size=5, **kw)
    assert not np.array_equal(split, ref)
    ddim = dict(sampler="ddim", steps=3, w=1.0, seed=0)  # no added noise: batching never matters
    np.testing.assert_array_equal(
        p1.sample(unet, schedule, "mnistm", digits, batch_size=5, **ddim)[0],
        p1.sample(unet, schedule, "mnistm", digits, **ddim)[0])


def test_reverse_text_says_which_digit_shows_later_and_why():
    """A low-contrast final image (a faint stroke) is named as the one the noise hides longer;
    two images of similar contrast get no such sentence."""
    from hw2lib.diffusion import linear_schedule
    strong = np.full((28, 28, 3), 200, np.uint8)
    strong[8:20, 12:16] = 20  # a dark stroke on a light ground
    faint = np.full((28, 28, 3), 120, np.uint8)
    faint[8:20, 12:16] = 100
    shown = [950, 500, 350, 250, 100]
    text = p1.reverse_text(linear_schedule(1000), shown, finals={"M": strong, "S": faint})
    c_strong, c_faint = strong.mean(-1).std(), faint.mean(-1).std()
    assert (f"The S strip shows its digit later than the M one: its final image has a contrast "
            f"(standard deviation of the grey levels, 0-255) of {c_faint:.1f} against "
            f"{c_strong:.1f}") in text
    assert "shows its digit later" not in p1.reverse_text(linear_schedule(1000), shown,
                                                          finals={"M": strong, "S": strong})


def test_clamp_effect_draws_the_same_noises_with_and_without_the_clamp(tiny_ckpt):
    """Four rows (two sets x clamp on/off) from the same noises; the unclamped draw of a barely
    trained model runs out of range, so more of its values end at 0 or 255; the text names both."""
    from hw2lib.p1.clamp import clamp_effect, clamp_text
    unet, schedule, cfg = p1.load(tiny_ckpt)

    class Always3(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.one_hot(torch.full((len(x),), 3), 10).float()
    t = clamp_effect(unet, schedule, cfg["sets"], Always3(), sampler="ddim", steps=3, w=1.0,
                     n_cols=2, per_digit=1)
    assert list(t.clamp) == [True, False, True, False] and set(t.images) == {10}
    # the grids' images are reused for the clamped rows (here all-black stand-ins: saturated)
    grids = {n: np.zeros((20, 28, 28, 3), np.uint8) for n in cfg["sets"]}
    reused = clamp_effect(unet, schedule, cfg["sets"], Always3(), sampler="ddim", steps=3, w=1.0,
                          n_cols=2, per_digit=1, known=grids)
    assert (reused[reused.clamp].saturated == 1.0).all()
    assert np.allclose(reused[~reused.clamp].saturated, t[~t.clamp].saturated)
    assert np.allclose(t.accuracy, 0.1)  # one 3 among the ten digits
    assert (t[~t.clamp].saturated.to_numpy() >= t[t.clamp].saturated.to_numpy()).all()
    text = clamp_text(t, {"mnistm": "M"}, "DDIM-3")
    assert text.startswith("**The clamp, measured here.** The same 10 starting noises per set "
                           "(the grids' first column below)")
    assert "The project CNN reads M 10.0% ± 9.5 with it and 10.0% ± 9.5 without" in text
    assert "colour values end at 0 or 255 (saturated)" in text
    assert "the digits read as well either way" in text
    worse = t.copy()
    worse.loc[1, "accuracy"] = 0.9  # M with the clamp 10%, without 90%: apart, so said
    worse.loc[0, "accuracy"] = 0.1
    worse.loc[~worse.clamp, "accuracy"] = [0.0, 0.1]
    worse.loc[worse.clamp, "accuracy"] = [1.0, 0.1]
    assert "without it fewer M digits read as their digit" in clamp_text(worse, {"mnistm": "M"},
                                                                          "DDIM-3")

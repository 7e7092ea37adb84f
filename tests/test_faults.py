"""Bad input and faults (issue 17): one clear error naming the file, nothing lost, nothing
executed. One test (or a few) per item of the issue; every fixture is written here."""
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from hw2_fixture import COURSE_UNET_PY
from PIL import Image

from hw2lib import cli, p1, p2
from hw2lib.data import check_tree, read_clip_zeroshot
from hw2lib.errors import InputError, TrainingInterrupted, UserError
from hw2lib.nets.unet import UNetConfig
from hw2lib.train import TrainConfig, fit, train_and_export

ROOT = Path(__file__).resolve().parents[1]

TINY_P1 = UNetConfig(sample_size=28, block_out_channels=(8, 16), layers_per_block=1,
                     down_block_types=("DownBlock2D", "DownBlock2D"),
                     up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
                     attention_head_dim=8, num_class_embeds=21)

def problems(root) -> list[str]:
    return [str(p) for r in check_tree(root) for p in r.problems]


def run_cli(capsys, *argv):
    """(exit code, stderr) of an in-process ``python -m hw2lib`` call."""
    capsys.readouterr()
    rc = cli.main([str(a) for a in argv])
    return rc, capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_p1_ckpt(tmp_path_factory):
    from hw2lib.data import DigitSet
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 28, 28, 3), dtype=np.uint8)
    y = np.arange(20) % 10
    sets = {n: DigitSet(n, x, y, x[:10], y[:10], "fp") for n in ("mnistm", "svhn")}
    out = tmp_path_factory.mktemp("p1") / "ckpt"
    return p1.train(sets, out, TrainConfig(steps=1, batch_size=2, warmup=1), unet_cfg=TINY_P1,
                    progress=False)


@pytest.fixture
def course_unet(tmp_path):
    path = tmp_path / "UNet.py"
    path.write_text(COURSE_UNET_PY)
    ckpt = tmp_path / "UNet.pt"
    torch.save({"w": torch.zeros(3)}, ckpt)
    return path, ckpt


def small_noise_dir(folder: Path, n: int = 5, size: int = 8) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        torch.save(torch.randn(1, 3, size, size, generator=g), folder / f"{i:02d}.pt")
    return folder


# ------------------------------------------------------------------ 2: CLI errors, exit codes
def test_cli_user_error_is_one_message_with_exit_code_2(hw2_data, tmp_path, capsys):
    (hw2_data / "digits" / "mnistm" / "train.csv").unlink()
    rc, err = run_cli(capsys, "train", "classifier", "--mode", "course", "--data", hw2_data,
                      "--out", tmp_path / "clf", "--cache-dir", tmp_path / "cache")
    assert rc == 2
    assert "train.csv: missing" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 4
    rc, err = run_cli(capsys, "data", "preview", "--mode", "course", "--out", tmp_path / "o")
    assert rc == 2 and "needs data_dir" in err


def test_cli_debug_shows_the_traceback(hw2_data, tmp_path):
    (hw2_data / "digits" / "mnistm" / "train.csv").unlink()
    with pytest.raises(UserError, match="train.csv: missing"):
        cli.main(["--debug", "train", "classifier", "--mode", "course", "--data", str(hw2_data),
                  "--out", str(tmp_path / "clf"), "--cache-dir", str(tmp_path / "cache")])


def test_cli_subprocess_has_no_traceback(tmp_path):
    run = subprocess.run([sys.executable, "-m", "hw2lib", "p1", "sample", "--out",
                          str(tmp_path / "o"), "--ckpt", str(tmp_path / "nope")],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("error: ") and "Traceback" not in run.stderr
    assert str(tmp_path / "nope" / "config.json") in run.stderr


# -------------------------------------------------------------- 4: input.json, one validator
@pytest.mark.parametrize("field, value, expect", [  # concept "0" broken by setting its field
    ("prompt", 5, "prompt must be a non-empty list of strings"),
    ("baseline", [79], "baseline must be a list of [image score, text score] pairs"),
    ("baseline", [[79, 34]], "differ in length"),
    ("src_image", None, "src_image must be a non-empty string"),
    ("token_name", "<new2>", "is also the token of concept '0'"),
])
def test_input_json_defects_are_named_by_data_check(hw2_data, field, value, expect):
    p = hw2_data / "textual_inversion" / "input.json"
    spec = json.loads(p.read_text())
    spec["0"][field] = value
    p.write_text(json.dumps(spec))
    found = problems(hw2_data)
    where = "input.json['1']" if field == "token_name" else "input.json['0']"
    assert any(where in f and expect in f for f in found), found


def test_malformed_input_json_names_the_file(hw2_data):
    from hw2lib.data.course import read_concepts
    p = hw2_data / "textual_inversion" / "input.json"
    p.write_text('{"0": {"src_image": ')
    found = problems(hw2_data)
    assert any(f.startswith(f"{p}: not a JSON object") for f in found), found
    with pytest.raises(InputError, match="input.json"):
        read_concepts(p)


def test_ti_commands_validate_input_json_before_loading_anything(hw2_data, tmp_path, capsys):
    ti = hw2_data / "textual_inversion"
    spec = json.loads((ti / "input.json").read_text())
    spec["1"]["baseline"] = [[61]]
    (ti / "input.json").write_text(json.dumps(spec))
    sd = tmp_path / "sd"
    sd.mkdir()
    (sd / "model_index.json").write_text("{}")  # found, but never loaded: the JSON fails first
    for argv in (["ti", "train", "--sd", sd, "--json", ti / "input.json", "--refs", ti,
                  "--out", tmp_path / "o"],
                 ["ti", "generate", "--sd", sd, "--json", ti / "input.json", "--embeds",
                  tmp_path / "e", "--out", tmp_path / "g"],
                 ["ti", "score", "--json", ti / "input.json", "--out", tmp_path / "g",
                  "--refs", ti]):
        rc, err = run_cli(capsys, *argv)
        assert rc == 2 and "input.json['1']: baseline must be" in err, err
        assert "Traceback" not in err


# ---------------------------------------------------------------- 5: planted state pickle
class _Planted:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_planted_training_state_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    state = tmp_path / "out" / "state"
    state.mkdir(parents=True)
    torch.save({"model": _Planted(marker)}, state / "train_state.pt")
    assert not marker.exists()
    model = torch.nn.Linear(2, 1)
    with pytest.raises(InputError, match="train_state.pt: not a training state"):
        fit(model, lambda m, g: m(torch.randn(4, 2, generator=g)).pow(2).mean(),
            TrainConfig(steps=2, batch_size=4, warmup=1, channels_last=False), state,
            progress=False)
    assert not marker.exists()


def test_training_state_round_trips_with_weights_only(tmp_path):
    model = torch.nn.Linear(2, 1)
    loss = lambda m, g: m(torch.randn(4, 2, generator=g)).pow(2).mean()  # noqa: E731
    cfg = TrainConfig(steps=2, batch_size=4, warmup=1, channels_last=False)
    fit(model, loss, cfg, tmp_path, progress=False)
    st = torch.load(tmp_path / "train_state.pt", weights_only=True)
    assert st["step"] == 2 and st["history"]["step"] == [0, 1]
    more = fit(torch.nn.Linear(2, 1), loss, TrainConfig(**{**cfg.__dict__, "steps": 3}), tmp_path,
               progress=False)
    assert more.history["step"] == [0, 1, 2]


# ------------------------------------------------------------ 6: input.json keys as folders
def test_traversal_key_is_refused_and_nothing_is_written(hw2_data, tmp_path, capsys):
    ti = hw2_data / "textual_inversion"
    spec = json.loads((ti / "input.json").read_text())
    spec["../../../x"] = spec.pop("1")
    (ti / "input.json").write_text(json.dumps(spec))
    assert any("is not a plain name" in f for f in problems(hw2_data))
    sd = tmp_path / "sd"
    sd.mkdir()
    (sd / "model_index.json").write_text("{}")
    out = tmp_path / "a" / "b" / "c" / "out"
    rc, err = run_cli(capsys, "ti", "generate", "--sd", sd, "--json", ti / "input.json",
                      "--embeds", tmp_path / "e", "--out", out)
    assert rc == 2 and "'../../../x' is not a plain name" in err
    assert not (tmp_path / "x").exists() and not out.exists()


def test_child_folder_stays_under_out_even_through_a_symlink(tmp_path):
    from hw2lib.files import child
    out = tmp_path / "out"
    out.mkdir()
    (out / "0").symlink_to(tmp_path)
    with pytest.raises(InputError, match="leads outside"):
        child(out, "0", where="input.json")
    assert child(out, "1", where="input.json") == out / "1"


# --------------------------------------------------------------------------- 7: bad noise
@pytest.mark.parametrize("tensor, expect", [
    (torch.full((1, 3, 256, 256), float("nan")), "NaN or infinite"),
    (torch.full((1, 3, 256, 256), float("inf")), "NaN or infinite"),
    (torch.zeros(1, 3, 256, 256, dtype=torch.uint8), "dtype torch.uint8"),
    (torch.zeros(2, 3, 256, 256), "2 noises in one file"),
])
def test_bad_noise_is_named_by_data_check_and_p2_sample(hw2_data, tmp_path, capsys, course_unet,
                                                        tensor, expect):
    bad = hw2_data / "face" / "noise" / "04.pt"
    torch.save(tensor, bad)
    found = problems(hw2_data)
    assert any(f.startswith(f"{bad}:") and expect in f for f in found), found
    module, ckpt = course_unet
    out = tmp_path / "out"
    rc, err = run_cli(capsys, "p2", "sample", "--noise-dir", bad.parent, "--out", out,
                      "--unet-module", module, "--unet-ckpt", ckpt)
    assert rc == 2 and f"{bad}:" in err and expect in err
    assert not out.exists() or not any(out.iterdir())


# ---------------------------------------------------------------- 8: GT is never overwritten
@pytest.mark.parametrize("target", ["GT", "noise", "."])
def test_p2_sample_refuses_out_over_its_inputs(hw2_data, tmp_path, capsys, course_unet, target):
    face = hw2_data / "face"
    before = {p: p.read_bytes() for p in sorted(face.rglob("*")) if p.is_file()}
    module, ckpt = course_unet
    rc, err = run_cli(capsys, "p2", "sample", "--noise-dir", face / "noise",
                      "--out", face / target, "--unet-module", module, "--unet-ckpt", ckpt)
    assert rc == 2 and "overlaps" in err and "choose another output folder" in err
    after = {p: p.read_bytes() for p in sorted(face.rglob("*")) if p.is_file()}
    assert after == before


# ------------------------------------------------------- 9: stale p1 folders, hidden folders
def test_p1_sample_refuses_a_folder_with_older_files(tiny_p1_ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "mnistm").mkdir(parents=True)
    Image.new("RGB", (28, 28)).save(out / "mnistm" / "3_077.png")
    argv = ["p1", "sample", "--out", out, "--ckpt", tiny_p1_ckpt, "--n-per-digit", "1",
            "--steps", "1"]
    rc, err = run_cli(capsys, *argv)
    assert rc == 2 and f"{out / 'mnistm'} already holds 1 file(s)" in err and "--overwrite" in err
    assert not (out / "svhn").exists()
    rc, err = run_cli(capsys, *argv, "--overwrite")
    assert rc == 0, err
    assert sorted(p.name for p in (out / "mnistm").iterdir()) == [f"{d}_001.png" for d in range(10)]
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no partial folders


def test_p1_score_grades_only_the_set_folders(tmp_path, capsys):
    from hw2lib.classifier import DigitCNN, save_classifier
    clf = save_classifier(DigitCNN().eval(), tmp_path / "clf", {})
    out = tmp_path / "out"
    img = np.zeros((2, 28, 28, 3), np.uint8)
    for d in ("mnistm", "svhn", ".ipynb_checkpoints", "old"):
        p1.write_grading_folder(out, d, img, [1, 2])
    capsys.readouterr()
    assert cli.main(["p1", "score", str(out), "--classifier", str(clf)]) == 0
    rows = capsys.readouterr().out
    assert "mnistm" in rows and "svhn" in rows
    assert ".ipynb_checkpoints" not in rows and " old " not in rows


# ------------------------------------------------------------------------- 10: id2label
@pytest.mark.parametrize("labels, expect", [
    ({"0": "apple", "1": "maple_tree", "2": "willow_tree", "3": "a", "7": "b"},
     "class ids must be 0..4 without gaps; missing [4, 5, 6]"),
    ({}, "empty"),
    ({"0": "apple", "x": "maple_tree"}, "key 'x' is not a class id"),
    ({"0": "apple", "1": ""}, "class 1: name '' is not a non-empty string"),
])
def test_id2label_must_be_contiguous_and_non_empty(hw2_data, labels, expect):
    path = hw2_data / "clip_zeroshot" / "id2label.json"
    path.write_text(json.dumps(labels))
    found = problems(hw2_data)
    assert any(f.startswith(f"{path}:") and expect in f for f in found), found
    with pytest.raises(InputError, match="id2label.json"):
        read_clip_zeroshot(hw2_data)


# ------------------------------------------------------------------------- 11: p2 mse pairs
def _images(folder: Path, names, size=(8, 8)):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        Image.new("RGB", size, (10, 20, 30)).save(folder / n)


def test_p2_mse_every_gt_needs_a_prediction(tmp_path, capsys):
    gt, pred = tmp_path / "GT", tmp_path / "pred"
    _images(gt, ["00.png", "01.png", "02.jpg"])
    _images(pred, ["00.png", "01.png"])
    rc, err = run_cli(capsys, "p2", "mse", "--pred", pred, "--gt", gt)
    assert rc == 2 and f"{gt / '02.jpg'}: has no prediction" in err
    _images(pred, ["02.png", "03.png"])
    rc, err = run_cli(capsys, "p2", "mse", "--pred", pred, "--gt", gt)
    assert rc == 2 and f"{pred / '03.png'}: has no ground truth" in err
    (pred / "03.png").unlink()
    capsys.readouterr()
    assert cli.main(["p2", "mse", "--pred", str(pred), "--gt", str(gt)]) == 0
    out = capsys.readouterr().out
    assert "02.png: 0.0000" in out and "mean: 0.0000" in out


def test_p2_mse_names_a_gt_of_the_wrong_size(tmp_path, capsys):
    gt, pred = tmp_path / "GT", tmp_path / "pred"
    _images(gt, ["00.png"])
    _images(gt, ["01.png"], size=(8, 6))
    _images(pred, ["00.png", "01.png"])
    rc, err = run_cli(capsys, "p2", "mse", "--pred", pred, "--gt", gt)
    assert rc == 2 and f"{gt / '01.png'}: is 8x6 but the prediction {pred / '01.png'} is 8x8" in err


# ------------------------------------------------------------- 12: eta noise per image
def test_eta_noise_does_not_depend_on_the_batch_size(tmp_path, capsys, course_unet):
    noise = small_noise_dir(tmp_path / "noise", n=5)
    module, ckpt = course_unet
    outs = {}
    for bs in (2, 5):
        outs[bs] = tmp_path / f"out{bs}"
        assert cli.main(["p2", "sample", "--noise-dir", str(noise), "--out", str(outs[bs]),
                         "--unet-module", str(module), "--unet-ckpt", str(ckpt), "--eta", "1",
                         "--batch-size", str(bs), "--seed", "3"]) == 0
    for n in ("00", "02", "04"):
        assert (outs[2] / f"{n}.png").read_bytes() == (outs[5] / f"{n}.png").read_bytes()


def test_eta_noise_differs_between_images():
    same = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)).repeat(2, 1, 1, 1)
    x = p2.ddim_faces(lambda x, t: 0.3 * torch.tanh(x), same, eta=1.0, seed=0)
    assert (x[0] - x[1]).abs().max() > 1e-2
    both = p2.ddim_faces(lambda x, t: 0.3 * torch.tanh(x), same, eta=1.0, seed=0,
                         image_ids=[7, 1])
    torch.testing.assert_close(both[1], x[1], rtol=0, atol=0)


# -------------------------------------------------------------------- 13: interrupted runs
def test_sigterm_saves_state_raises_and_a_rerun_resumes(tmp_path):
    calls = []

    def loss(m, g):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return m(torch.randn(4, 2, generator=g)).pow(2).mean()

    cfg = TrainConfig(steps=4, batch_size=4, warmup=1, channels_last=False, save_every=100)
    torch.manual_seed(0)
    with pytest.raises(TrainingInterrupted, match="rerun the command to resume") as e:
        fit(torch.nn.Linear(2, 1), loss, cfg, tmp_path, progress=False)
    assert e.value.exit_code == 128 + signal.SIGTERM
    assert torch.load(tmp_path / "train_state.pt", weights_only=True)["step"] == 2
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored
    res = fit(torch.nn.Linear(2, 1), loss, cfg, tmp_path, progress=False)
    assert res.history["step"] == [0, 1, 2, 3]


def test_interrupted_export_leaves_the_committed_checkpoint(tiny_p1_ckpt, tmp_path, monkeypatch):
    import shutil

    from hw2lib.train import loop as train_mod
    ckpt = tmp_path / "p1"
    shutil.copytree(tiny_p1_ckpt, ckpt)
    shutil.rmtree(ckpt / "state")
    before = {p.name: p.read_bytes() for p in ckpt.iterdir() if p.is_file()}
    monkeypatch.setattr(train_mod._StopOnSignal, "requested", True, raising=False)
    monkeypatch.setattr(train_mod._StopOnSignal, "__init__",
                        lambda self: self.__dict__.update(_old={}, signum=2))
    x, y = torch.rand(4, 3, 28, 28) * 2 - 1, torch.arange(4)
    with pytest.raises(TrainingInterrupted):
        train_and_export(TINY_P1, x, y, TrainConfig(steps=3, batch_size=2, warmup=1),
                                   ckpt, null_label=20, progress=False)
    assert {p.name: p.read_bytes() for p in ckpt.iterdir() if p.is_file()} == before


CHECKPOINTS_SCRIPT = textwrap.dedent('''
    import os, signal, sys
    import numpy as np
    from hw2lib import classifier, cli, data
    from hw2lib.data import DigitSet

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (140, 28, 28, 3), dtype=np.uint8)
    y = np.arange(140) % 10
    data.load_digit_sets = lambda *a, **k: {n: DigitSet(n, x, y, x[:10], y[:10], "fp")
                                            for n in ("mnistm", "svhn")}
    augment, calls = classifier._augment, []

    def interrupted(x, g):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return augment(x, g)

    classifier._augment = interrupted
    sys.exit(cli.main(["train", "classifier", "--out", sys.argv[1] + "/digit_classifier"]))
''')


def test_checkpoints_stop_on_sigterm(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(CHECKPOINTS_SCRIPT)
    out = tmp_path / "ckpts"
    run = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 143, run.stderr[-2000:]
    assert "stopped by signal" in run.stderr and "Traceback" not in run.stderr
    assert not (out / "digit_classifier" / "model.safetensors").exists()
    state = torch.load(out / "digit_classifier" / "state" / "train_state.pt", weights_only=True)
    assert state["step"] == 2


def test_make_checkpoints_trains_each_model_after_what_it_reads(tmp_path):
    """One Make target per model: a failing (or interrupted) training stops make before the
    models that read its output; the committed folders are up to date (nothing to train)."""
    run = subprocess.run(["make", "-n", "checkpoints", f"CKPT={tmp_path}"], capture_output=True,
                         text=True, cwd=ROOT)
    trains = [line.split()[4] for line in run.stdout.splitlines() if " train " in line]
    assert sorted(trains) == ["classifier", "clip", "faces", "p1", "t2i", "ti"]
    assert trains.index("clip") < trains.index("t2i") < trains.index("ti")
    assert f"--t2i {tmp_path}/p3_t2i" in run.stdout
    done = subprocess.run(["make", "-n", "checkpoints"], capture_output=True, text=True, cwd=ROOT)
    assert " train " not in done.stdout, done.stdout


# --------------------------------------------------- 14: classifier resumable, --save-every
def test_train_classifier_saves_a_resumable_state(tmp_path):
    from hw2lib.classifier import train_classifier
    from hw2lib.data import DigitSet
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 28, 28, 3), dtype=np.uint8)
    sets = {"mnistm": DigitSet("mnistm", x, np.arange(40) % 10, x[:4], np.arange(4), "fp")}
    a, info = train_classifier(sets, epochs=2, batch_size=16, state_dir=tmp_path, save_every=1,
                               progress=False)
    assert info["steps"] == 4
    st = torch.load(tmp_path / "train_state.pt", weights_only=True)
    assert st["step"] == 4 and st["config"]["lr_schedule"] == "onecycle"
    b, _ = train_classifier(sets, epochs=2, batch_size=16, state_dir=tmp_path, progress=False)
    for u, v in zip(a.state_dict().values(), b.state_dict().values()):
        torch.testing.assert_close(u, v, rtol=0, atol=0)
    # with fresh MNIST-M blends in every batch: the same weights from the same seed
    digits = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    fresh = [train_classifier(sets, epochs=1, batch_size=16, progress=False,
                              reblend=(digits, np.arange(12) % 10))[0] for _ in range(2)]
    for u, v in zip(fresh[0].state_dict().values(), fresh[1].state_dict().values()):
        torch.testing.assert_close(u, v, rtol=0, atol=0)


@pytest.mark.parametrize("model", ["p1", "faces", "classifier", "clip", "t2i", "ti"])
def test_save_every_is_settable_for_every_train_command(model):
    args = cli.build_parser().parse_args(["train", model, "--save-every", "7"])
    assert args.save_every == 7


# ------------------------------------------ 15: broken weights / config, hw2_1.sh paths
@pytest.mark.parametrize("name, content, expect", [
    ("model.safetensors", b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 9\n",
     "is a Git LFS pointer"),
    ("model.safetensors", b"\x00\x01garbage", "not a readable safetensors file"),
    ("config.json", b"version https://git-lfs.github.com/spec/v1\n", "is a Git LFS pointer"),
    ("config.json", b'{"unet": ', "not a checkpoint config written by hw2lib (invalid JSON"),
])
def test_broken_checkpoint_files_are_named(tiny_p1_ckpt, tmp_path, capsys, name, content, expect):
    import shutil
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_p1_ckpt, ckpt)
    (ckpt / name).write_bytes(content)
    rc, err = run_cli(capsys, "p1", "sample", "--out", tmp_path / "o", "--ckpt", ckpt)
    assert rc == 2 and f"{ckpt / name}" in err and expect in err, err


def test_hw2_1_sh_reads_relative_paths_from_the_callers_folder(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / "hw2_1.sh").write_text((ROOT / "hw2_1.sh").read_text())
    fake = repo / ".venv" / "bin" / "python"
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    caller = tmp_path / "caller"
    caller.mkdir()
    run = subprocess.run(["bash", str(repo / "hw2_1.sh"), "out dir"], cwd=caller,
                         capture_output=True, text=True, env={**os.environ, "CKPT": "my ckpt"})
    assert run.returncode == 0, run.stderr
    args = run.stdout.splitlines()
    assert args[args.index("--out") + 1] == str(caller / "out dir")
    assert args[args.index("--ckpt") + 1] == str(caller / "my ckpt")
    env = {k: v for k, v in os.environ.items() if k != "CKPT"}
    run = subprocess.run(["bash", str(repo / "hw2_1.sh"), "o"], cwd=caller, capture_output=True,
                         text=True, env=env)
    args = run.stdout.splitlines()
    assert args[args.index("--ckpt") + 1] == "checkpoints/p1_ddpm"  # the repository's own

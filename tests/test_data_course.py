import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from hw2lib.data import (CourseDataError, check_tree, course_digit_set, face_images,
                         read_clip_zeroshot, read_digits, read_face, read_textual_inversion)


def statuses(root):
    return {r.name: r.status for r in check_tree(root)}


def problems(root):
    return [str(p) for r in check_tree(root) for p in r.problems]


def test_valid_tree_passes(hw2_data_pristine):
    assert set(statuses(hw2_data_pristine).values()) == {"ok"}


def test_readers_on_valid_tree(hw2_data_pristine):
    d = read_digits(hw2_data_pristine, "mnistm")
    assert len(d.paths) == 140 and np.bincount(d.labels).tolist() == [14] * 10
    face = read_face(hw2_data_pristine)
    assert [p.name for p in face.noise_paths][:2] == ["00.pt", "01.pt"]
    zs = read_clip_zeroshot(hw2_data_pristine)
    assert zs.classnames == ["apple", "maple tree", "willow tree"] and len(zs.paths) == 6
    ti = read_textual_inversion(hw2_data_pristine)
    assert [c.token_name for c in ti] == ["<new1>", "<new2>"] and len(ti[0].prompts) == 2


def test_course_digit_set_split(hw2_data_pristine, tmp_path):
    ds = course_digit_set(hw2_data_pristine, "svhn", cache_dir=tmp_path)
    assert ds.x_train.shape == (130, 28, 28, 3) and np.bincount(ds.y_test).tolist() == [1] * 10
    assert face_images("course", data_dir=hw2_data_pristine).shape == (10, 256, 256, 3)


def test_absent_part_is_not_a_crash(hw2_data):
    import shutil
    shutil.rmtree(hw2_data / "textual_inversion")
    s = statuses(hw2_data)
    assert s["textual_inversion"] == "absent" and s["face"] == "ok"


@pytest.mark.parametrize("breakage, expect", [
    ("missing_png", "digits/mnistm/data/00003.png: missing"),
    ("bad_row", "train.csv:5: bad csv row"),
    ("label_range", "train.csv:4: label 12 out of range"),
    ("unreadable", "00007.png: unreadable image"),
    ("wrong_size", "00008.png: expected 28x28, found 30x30"),
    ("noise_shape", "noise/03.pt: wrong shape (1, 3, 64, 64)"),
    ("gt_missing", "GT/09.png: missing"),
    ("bad_json", "id2label.json: not a JSON object"),
    ("ti_keys", "input.json['1']: missing keys ['baseline']"),
])
def test_each_breakage_names_the_file(hw2_data, breakage, expect):
    root = hw2_data
    mn = root / "digits" / "mnistm"
    csv = (mn / "train.csv").read_text().splitlines()
    if breakage == "missing_png":
        (mn / "data" / "00003.png").unlink()
    elif breakage == "bad_row":
        csv[4] = "00003.png"
        (mn / "train.csv").write_text("\n".join(csv))
    elif breakage == "label_range":
        csv[3] = "00002.png,12"
        (mn / "train.csv").write_text("\n".join(csv))
    elif breakage == "unreadable":
        (mn / "data" / "00007.png").write_bytes(b"not a png")
    elif breakage == "wrong_size":
        from PIL import Image
        Image.new("RGB", (30, 30)).save(mn / "data" / "00008.png")
    elif breakage == "noise_shape":
        torch.save(torch.zeros(1, 3, 64, 64), root / "face" / "noise" / "03.pt")
    elif breakage == "gt_missing":
        (root / "face" / "GT" / "09.png").unlink()
    elif breakage == "bad_json":
        (root / "clip_zeroshot" / "id2label.json").write_text("[1, 2")
    elif breakage == "ti_keys":
        p = root / "textual_inversion" / "input.json"
        spec = json.loads(p.read_text())
        del spec["1"]["baseline"]
        p.write_text(json.dumps(spec))
    found = problems(root)
    assert any(expect in f for f in found), found


def test_reader_raises_with_every_problem(hw2_data):
    for i in (1, 2):
        (hw2_data / "face" / "noise" / f"0{i}.pt").unlink()
    with pytest.raises(CourseDataError) as e:
        read_face(hw2_data)
    assert "01.pt: missing" in str(e.value) and "02.pt: missing" in str(e.value)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "hw2lib", *args], capture_output=True, text=True)


def test_cli_data_check(hw2_data):
    ok = _cli("data", "check", "--data", str(hw2_data))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "[    ok] digits/mnistm: 140 images" in ok.stdout
    (hw2_data / "digits" / "svhn" / "data" / "00001.png").unlink()
    bad = _cli("data", "check", "--data", str(hw2_data))
    assert bad.returncode == 1 and "digits/svhn/data/00001.png: missing" in bad.stdout
    assert _cli("data", "check", "--data", str(hw2_data / "nope")).returncode == 2

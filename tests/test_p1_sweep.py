"""p1 sweep: the guidance sweep measured once per checkpoint, read by the notebook only when it
was measured with the page's sampler, steps, seed and data, and drawn on the page otherwise."""
import json
import shutil

import numpy as np
import pytest

from hw2lib import cli, p1
from hw2lib.classifier import DigitCNN, save_classifier
from hw2lib.p1 import sweep
from test_p1 import fake_set, tiny_ckpt  # noqa: F401 (a fixture)

DATA = {"mode": "embedded", "data_seed": 0}


@pytest.fixture(scope="module")
def stored(tiny_ckpt, tmp_path_factory):
    """A copy of the tiny checkpoint with a sweep at w = 0, 1, 2 (DDIM-2, 1 image per digit)."""
    root = tmp_path_factory.mktemp("sweep")
    ckpt = root / "ckpt"
    shutil.copytree(tiny_ckpt, ckpt)
    unet, schedule, cfg = p1.load(ckpt)
    clf = DigitCNN().eval()
    clf_dir = save_classifier(clf, root / "cnn", {})
    sets = {"mnistm": fake_set("mnistm"), "svhn": fake_set("svhn", seed=1)}
    refs = p1.look_references(sets, clf)
    table = sweep.measure(unet, schedule, cfg["sets"], clf, refs, ws=[0.0, 1.0, 2.0], per_digit=1,
                          sampler="ddim", steps=2, progress=False)
    sweep.write(ckpt / sweep.SWEEP_FILE, table, ckpt=ckpt, classifier=clf_dir,
                command="p1 sweep", sampler="ddim", steps=2, seed=0, per_digit=1, data=DATA)
    return ckpt, clf_dir, (unet, schedule, cfg, clf, refs), table


def test_measure_scores_every_w_and_set_on_the_same_noises(stored):
    _, _, _, table = stored
    assert len(table) == 6 and set(table.images) == {10}
    assert list(table.columns[:5]) == ["w", "set", "images", "accuracy", "SE"]
    assert {"colour TV / floor", "KID"} <= set(table.columns)


def test_the_stored_sweep_is_read_only_when_it_matches(stored):
    ckpt, clf_dir, _, table = stored
    kw = dict(sampler="ddim", steps=2, seed=0, data=DATA)
    got, meta = sweep.stored(ckpt, clf_dir, ws=[0.0, 2.0], **kw)
    assert list(got.w.unique()) == [0.0, 2.0] and meta["ws"] == [0.0, 1.0, 2.0]
    np.testing.assert_allclose(got.accuracy, table[table.w != 1.0].accuracy)
    assert sweep.stored(ckpt, clf_dir, ws=[0.0, 3.0], **kw) is None  # a w not measured
    for change in (dict(steps=3), dict(sampler="dpmpp"), dict(seed=1),
                   dict(data={**DATA, "data_seed": 1}), dict(data={**DATA, "mode": "course"})):
        assert sweep.stored(ckpt, clf_dir, ws=[0.0], **{**kw, **change}) is None, change
    other = save_classifier(DigitCNN().eval(), ckpt.parent / "cnn2", {})
    assert sweep.stored(ckpt, other, ws=[0.0], **kw) is None  # scored by another CNN
    assert sweep.stored(ckpt.parent / "cnn", clf_dir, ws=[0.0], **kw) is None  # no file


def test_obtain_reads_the_match_and_draws_the_rest(stored, monkeypatch):
    ckpt, clf_dir, (unet, schedule, cfg, clf, refs), table = stored
    kw = dict(ckpt=ckpt, classifier=clf_dir, ws=[0.0, 2.0], sampler="ddim", seed=0, data=DATA,
              n_cols=3, per_digit=2, shown=1)
    got, meta, thumbs = sweep.obtain(unet, schedule, cfg["sets"], clf, refs, steps=2, **kw)
    assert meta is not None and set(got.images) == {10}  # the stored one, 1 per digit
    assert thumbs[(2.0, "svhn")].shape == (10, 28, 28, 3)
    # the thumbnails are the grid's first column of each digit, whatever the stored size
    grid, _ = p1.sample(unet, schedule, "svhn", np.repeat(np.arange(10), 3), sampler="ddim",
                        steps=2, w=2.0, seed=1)
    np.testing.assert_array_equal(thumbs[(2.0, "svhn")], grid[p1.sweep_columns(3, 1)])
    text = sweep.text(got, meta, 4.0, {"mnistm": "M", "svhn": "S"})
    assert text.startswith("The sweep below was measured once for this checkpoint on 10 images")
    assert "`p1 sweep`" in text and "(10 samples per point" in text
    # another step count: drawn here, per_digit of the grid's noises, and said so by omission
    got, meta, thumbs = sweep.obtain(unet, schedule, cfg["sets"], clf, refs, steps=3, **kw)
    assert meta is None and set(got.images) == {20} and len(thumbs[(0.0, "mnistm")]) == 10
    assert sweep.text(got, meta, 4.0, {"mnistm": "M", "svhn": "S"}).startswith("Accuracy of")
    got, meta, _ = sweep.obtain(unet, schedule, cfg["sets"], clf, refs, steps=2,
                                **{**kw, "use_stored": False})
    assert meta is None and set(got.images) == {20}


def test_accuracies_keep_the_sets_order(stored):
    _, _, _, table = stored
    acc = sweep.accuracies(table.iloc[::-1])
    assert list(acc.columns) == ["svhn", "mnistm"] and list(acc.index) == [0.0, 1.0, 2.0]


def test_sweep_cli_writes_the_file_the_notebook_reads(stored, tmp_path, monkeypatch):
    ckpt, clf_dir, _, _ = stored
    import hw2lib.data
    sets = {"mnistm": fake_set("mnistm"), "svhn": fake_set("svhn", seed=1)}
    monkeypatch.setattr(hw2lib.data, "load_digit_sets", lambda *a, **k: sets)  # no data build
    out = tmp_path / "s.json"
    rc = cli.main(["p1", "sweep", "--ckpt", str(ckpt), "--classifier", str(clf_dir), "--out",
                   str(out), "--w", "0,3", "--per-digit", "1", "--sampler", "ddim",
                   "--steps", "2"])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["meta"]["ws"] == [0.0, 3.0] and d["meta"]["data_seed"] == 0
    assert d["meta"]["mode"] == "embedded" and len(d["rows"]) == 4


def test_text_sets_the_stored_row_beside_the_grids_accuracy(stored):
    import pandas as pd
    _, _, _, table = stored
    meta = {"command": "p1 sweep", "cpu": "CPU", "made": "2026-11-26 10:00:00"}
    t = table.assign(images=500, accuracy=[0.8, 0.79, 0.99, 1.0, 0.98, 0.99][:len(table)])
    names = {"mnistm": "M", "svhn": "S"}
    scores = pd.DataFrame([
        {"digit set": "M", "classifier": "project CNN", "images": 100, "accuracy": 1.0},
        {"digit set": "S", "classifier": "project CNN", "images": 100, "accuracy": 0.97},
        {"digit set": "M", "classifier": "course LeNet", "images": 100, "accuracy": 0.5}])
    text = sweep.text(t, meta, 1.0, names, scores=scores)
    assert ("At the grids' w = 1 these 500 per set read M 99.0% ± 0.4 and S 100.0% (no error); "
            "the grids' own 100 per set, from other noises, read 100.0% (no error) and 97.0% ± "
            "1.7: the larger draw is the closer estimate.\n\nAccuracy of") in text
    assert "At the grids'" not in sweep.text(t, None, 1.0, names, scores=scores)  # drawn here
    assert "At the grids'" not in sweep.text(t, meta, 3.0, names, scores=scores)  # w not swept

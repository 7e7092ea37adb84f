"""p1 ablation: training recipes at one budget, each run scored like the sampler curve, the
recipe read from its manifest, and the prose computed from the table."""
import json
from dataclasses import replace

import pytest

from hw2lib import cli, p1
from hw2lib.classifier import DigitCNN, save_classifier
from hw2lib.look import KID_RATIO
from hw2lib.p1 import ablation
from hw2lib.train import TrainConfig
from test_p1 import TINY, fake_set


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("abl")
    sets = {"mnistm": fake_set("mnistm"), "svhn": fake_set("svhn", seed=1)}
    cfg = TrainConfig(steps=2, batch_size=4, save_every=2, warmup=1)
    plain = p1.train(sets, root / "plain", cfg, unet_cfg=TINY, progress=False)
    snr = p1.train(sets, root / "snr5", replace(cfg, snr_gamma=5.0, guidance_null="per-set"),
                   unet_cfg=TINY, progress=False)
    return sets, plain, snr


def test_ablation_scores_each_run_with_its_recipe(runs, tmp_path):
    sets, plain, snr = runs
    clf = DigitCNN().eval()
    refs = p1.look_references(sets, clf)
    table = ablation.measure([plain, snr], clf, refs, sampler="ddim", steps=2, w=1.0,
                             per_digit=1, progress=False)
    assert len(table) == 4 and set(table.run) == {"plain", "snr5"}
    assert set(table["train steps"]) == {2} and set(table.steps) == {2}  # training vs sampler
    out = ablation.write(tmp_path / "r.json", table, command="p1 ablation", sampler="ddim",
                         steps=2, w=1.0, per_digit=1, seed=0)
    back, meta = ablation.read(out)
    v = ablation.view(back)
    assert list(v.run) == ["plain", "snr5"]
    assert list(v.loss) == ["plain ε loss", "Min-SNR, γ = 5"] and set(v.images) == {20}
    assert list(v["guidance null"]) == ["shared", "per-set"]
    best = v.loc[v.accuracy.idxmax()]
    text = ablation.text(back, meta)
    assert "from scratch for the same budget, 2 steps of 4 digits" in text
    other = v.drop(best.name).iloc[0]
    diff = 100 * (best.accuracy - other.accuracy)
    named = {r.run: f"{r.run} ({r.loss}, {r['guidance null']} null)" for _, r in v.iterrows()}
    assert f"At 2 steps, {named[best.run]} reads {100 * best.accuracy:.1f}%" in text
    assert f"against {named[other.run]} {100 * other.accuracy:.1f}%" in text
    assert f"a difference of {diff:+.1f} points (SE " in text
    # and the look beside it, in the accuracy's order: the best run first
    cell = ablation.look.ratio_cell
    assert (f"on the look, {best.run} against {other.run}: colour TV "
            f"{cell(best['colour TV / floor'])} against "
            f"{cell(other['colour TV / floor'])}, KID {cell(best[KID_RATIO])} against "
            f"{cell(other[KID_RATIO])}, so ") in text
    wins = sum(other[c] < best[c] for c in ("colour TV / floor", KID_RATIO))
    assert {2: f"so {other.run} looks the closer to the data on both",
            0: f"so {best.run} also looks the closer to the data on both",
            1: "so each looks the closer on one"}[wins] in text
    assert "DDIM-2" in text and ablation.read(tmp_path / "absent.json") is None
    assert "one per set, with which guidance amplifies the digit" in text  # both nulls ran
    # runs of different budgets are said to be so
    longer = back.assign(**{"train steps": [2, 2, 3, 3]})
    assert "for 2, 3 steps (runs with the same number of steps compare" in ablation.text(longer, meta)
    assert "Alone at their number of steps" not in text  # both runs share a budget
    assert ("Alone at their number of steps: " in ablation.text(longer, meta)
            and "not which recipe is better" in ablation.text(longer, meta))


def test_ablation_cli_refuses_a_folder_that_is_no_run_before_any_work(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    rc = cli.main(["p1", "ablation", str(tmp_path / "run"), "--out", str(tmp_path / "o.json")])
    assert rc == 2 and not (tmp_path / "o.json").exists()
    assert "manifest.json: missing" in capsys.readouterr().err


def test_ablation_cli_writes_the_table(runs, tmp_path, monkeypatch):
    sets, plain, snr = runs
    import hw2lib.data
    monkeypatch.setattr(hw2lib.data, "load_digit_sets", lambda *a, **k: sets)  # no data build
    clf_dir = save_classifier(DigitCNN().eval(), tmp_path / "cnn", {})
    out = tmp_path / "r.json"
    rc = cli.main(["p1", "ablation", str(plain), str(snr), "--out", str(out), "--classifier",
                   str(clf_dir), "--steps", "2", "--per-digit", "1"])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["meta"]["steps"] == 2 and {r["run"] for r in d["rows"]} == {"plain", "snr5"}


def test_the_comparison_says_which_run_looks_closer():
    def run(name, tv, kid):
        return {"run": name, "colour TV / floor": tv, KID_RATIO: kid}
    best = run("a", 1.8, 1.1)
    assert ablation._closer(best, run("b", 1.5, 0.8)) == "so b looks the closer to the data on both"
    assert ablation._closer(best, run("b", 2.0, 1.2)).startswith("so a also looks the closer")
    assert ablation._closer(best, run("b", 1.5, 1.2)) == "so each looks the closer on one"

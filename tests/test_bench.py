"""make bench runs end to end on its tiny profile and writes one table (numbers not checked:
the benchmark is not a test)."""
import json

from hw2lib import bench, cli


def test_bench_tiny(tmp_path, capsys):
    timings = tmp_path / "timings.json"
    timings.write_text(json.dumps({"p1_ddpm": 2.0, "p2_ddim": 3.0}))
    rc = cli.main(["bench", "--profile", "tiny", "--out", str(tmp_path / "bench"),
                   "--timings", str(timings)])
    assert rc == 0
    out = json.loads((tmp_path / "bench" / "bench.json").read_text())
    sections = {r["section"] for r in out["rows"]}
    assert {"sampler", "flops", "training", "report"} <= sections
    names = {r["name"] for r in out["rows"]}
    assert "ours DDIM: loop alone" in names and "diffusers DDIMScheduler: loop alone" in names
    assert "make report, committed checkpoints" in names
    total = next(r for r in out["rows"] if r["name"] == "make report, committed checkpoints")
    assert total["value"] == 5.0
    assert "| sampler | UNet forward |" in capsys.readouterr().out


def test_markdown_marks_missing_values():
    md = bench.to_markdown([bench.Row("report", "make report", float("nan"), "s", "absent")])
    assert "| report | make report | n/a | s | absent |" in md


def test_report_cost_counts_every_committed_model(tmp_path):
    """A folder with a manifest counts by it; the digit CNN's folder, which has only info.json,
    counts too; a folder with neither is skipped."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "manifest.json").write_text(json.dumps({"wall_seconds": 10.0}))
    (tmp_path / "a" / "info.json").write_text(json.dumps({"wall_seconds": 99.0}))
    (tmp_path / "digit_classifier").mkdir()
    (tmp_path / "digit_classifier" / "info.json").write_text(
        json.dumps({"wall_seconds": 5.0, "cpu_seconds": 4.0}))
    (tmp_path / "empty").mkdir()
    rows = {r.name: r for r in bench.report_cost(tmp_path / "absent.json", tmp_path)}
    assert rows["training a"].value == 10.0
    assert rows["training digit_classifier"].value == 5.0 and "4 s" in rows["training digit_classifier"].note
    assert "training empty" not in rows
    assert rows["training, all committed models"].value == 15.0

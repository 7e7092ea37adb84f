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
    assert not any(n.startswith("make checkpoints") for n in rows)  # none timed: no row
    (tmp_path / "make_checkpoints_timing.json").write_text(json.dumps({
        "sum_of_manifest_wall_seconds": 6215.0, "date": "2026-11-27", "threads": 2,
        "machine": {"cpu": "AMD EPYC", "kernels": "AVX2"}}))
    rows = {r.name: r for r in bench.report_cost(tmp_path / "absent.json", tmp_path)}
    timed = rows["make checkpoints from scratch, each model alone"]
    assert timed.value == 6215.0 and "AMD EPYC with AVX2 kernels and 2 threads" in timed.note
    assert rows["training, all committed models"].value == 15.0  # not added to the committed


def test_report_cost_of_a_run_two_at_a_time(tmp_path):
    """With run.json from a jobs=2 run, the sum of the notebooks is not called make report's
    time; the wall time of the shared phase is, and each shared notebook's row says so."""
    (tmp_path / "timings.json").write_text(json.dumps({"p1": 50.0, "p3": 80.0, "appendix": 3.0}))
    (tmp_path / "run.json").write_text(json.dumps(
        {"notebooks": ["p1", "p3"], "jobs": 2, "threads": 1, "wall_seconds": 85.0}))
    rows = {r.name: r for r in bench.report_cost(tmp_path / "timings.json", tmp_path)}
    assert "make report, committed checkpoints" not in rows
    assert rows["notebooks, sum of their times"].value == 133.0
    wall = rows["make report: wall time of the 2 notebooks before this appendix"]
    assert wall.value == 85.0 and "2 at a time" in wall.note
    assert rows["notebook p1"].note == "last make report, 2 at a time with 1 torch thread each"
    assert rows["notebook appendix"].note == "last make report, alone"
    (tmp_path / "run.json").unlink()  # one at a time: the sum is make report's time
    rows = {r.name: r for r in bench.report_cost(tmp_path / "timings.json", tmp_path)}
    assert rows["make report, committed checkpoints"].value == 133.0

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

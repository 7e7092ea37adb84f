import json
from pathlib import Path

import nbformat
import pytest

from hw2lib.report import build_html, off_machine_urls, parse_param, run_notebook, save_metrics

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_parse_param():
    assert parse_param("seed=3") == ("seed", 3)
    assert parse_param("data_dir=") == ("data_dir", "")
    assert parse_param("mode=course") == ("mode", "course")
    with pytest.raises(ValueError):
        parse_param("oops")


def test_save_metrics_merges(tmp_path):
    save_metrics(tmp_path, {"a": 1})
    save_metrics(tmp_path, {"b": [1, 2]})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"a": 1, "b": [1, 2]}


def test_off_machine_detection():
    assert off_machine_urls('<img src="https://x.org/a.png">') == ['src="https://x.org']
    assert off_machine_urls("<script>import('https://cdn.x/m.js')</script>")
    assert off_machine_urls('<img src="data:image/png;base64,AA"><a name="x">') == []


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebooks_committed_clean(nb):
    """Notebooks are committed without outputs, with a tagged parameters cell of literals."""
    book = nbformat.read(str(nb), as_version=4)
    assert all(not c.get("outputs") and not c.get("execution_count")
               for c in book.cells if c.cell_type == "code")
    params = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    assert "def " not in "".join(c.source for c in book.cells if c.cell_type == "code")


def test_data_notebook_course_mode_and_html(hw2_data_pristine, tmp_path):
    """Pipeline smoke: 00_data runs under papermill on the fixture tree; the HTML is offline."""
    figs = tmp_path / "figs"
    seconds = run_notebook(ROOT / "notebooks" / "00_data.ipynb", tmp_path / "00.ipynb",
                           {"mode": "course", "data_dir": str(hw2_data_pristine),
                            "cache_dir": str(tmp_path / "cache"), "fig_dir": str(figs),
                            "unknown_param": 1})
    assert seconds > 0
    assert {p.name for p in figs.iterdir()} >= {"mnistm_samples.png", "svhn_samples.png",
                                                "faces.png", "metrics.json"}
    metrics = json.loads((figs / "metrics.json").read_text())
    assert metrics["mode"] == "course" and metrics["counts"]["svhn/train"]["total"] == 130
    html = build_html([tmp_path / "00.ipynb"], tmp_path / "index.html").read_text()
    assert off_machine_urls(html) == [] and html.count("data:image/png;base64") >= 3


def _tiny_notebook(folder: Path, name: str = "p9_tiny.ipynb") -> Path:
    """A two-parameter notebook that draws one figure from a 'checkpoint' file it names."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ckpt").mkdir(exist_ok=True)
    (folder / "ckpt" / "manifest.json").write_text(json.dumps({"steps_done": 7, "commit": "abc1234def"}))
    cells = [nbformat.v4.new_markdown_cell("## 9. Tiny\n\nMath: $\\alpha_t$\n\n### Part a"),
             nbformat.v4.new_code_cell('scale = 2  # a number\nckpt = "ckpt"  # a checkpoint\nseed = 0'),
             nbformat.v4.new_code_cell(
                 "import matplotlib.pyplot as plt\n"
                 "fig = plt.figure(figsize=(1, 1))\n"
                 "plt.plot([0, scale])\nplt.show()")]
    cells[1].metadata["tags"] = ["parameters"]
    path = folder / name
    book = nbformat.v4.new_notebook(cells=cells)
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, str(path))
    return path


def test_run_all_is_incremental(tmp_path, capsys):
    from hw2lib.report import fingerprint, run_all
    nb = _tiny_notebook(tmp_path / "notebooks")
    build = tmp_path / "build"
    t1 = run_all([nb], build, {"scale": 2, "not_declared": 1})
    assert "p9_tiny" in t1 and (build / "executed" / nb.name).exists()
    first = fingerprint(nb, {"scale": 2})
    assert fingerprint(nb, {"scale": 2, "not_declared": 5}) == first  # undeclared: ignored
    assert fingerprint(nb, {"scale": 3}) != first  # a parameter changed
    capsys.readouterr()
    run_all([nb], build, {"scale": 2})
    assert "up to date" in capsys.readouterr().out
    (nb.parent / "ckpt" / "model.bin").write_bytes(b"new weights")  # the checkpoint changed
    assert fingerprint(nb, {"scale": 2}) != first
    run_all([nb], build, {"scale": 2})
    assert "p9_tiny.ipynb: running" in capsys.readouterr().out
    assert json.loads((build / "timings.json").read_text())["p9_tiny"] > 0


def test_report_page_structure(tmp_path):
    from hw2lib.report import run_all
    nb = _tiny_notebook(tmp_path / "notebooks")
    run_all([nb], tmp_path / "build", {"scale": 2})
    out = build_html([tmp_path / "build" / "executed" / nb.name], tmp_path / "report" / "index.html",
                     commit="c0ffee", param_base=tmp_path / "notebooks")
    page = out.read_text()
    assert off_machine_urls(page) == []
    assert 'href="#p9_tiny-9-tiny"' in page and 'id="p9_tiny-9-tiny"' in page  # TOC -> section
    assert 'href="#p9_tiny-part-a"' in page
    assert "Figure 1" in page and "scale=2" in page and "report commit c0ffee" in page
    assert "ckpt (7 steps, trained at commit abc1234)" in page
    assert "code-toggle" in page and "hide-code" in page
    assert 'src="mathjax/MathJax.js' in page
    assert (out.parent / "mathjax" / "MathJax.js").exists()
    assert "scale = 2" not in page.split("</head>")[1].split("jp-CodeCell")[0]  # params cell dropped


def test_interactive_cells_are_not_executed(tmp_path):
    """A widget cell (tag "interactive") is skipped by papermill runs: here it would raise."""
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("raise RuntimeError('widget ran')",
                                          metadata={"tags": ["interactive"]}),
                nbformat.v4.new_code_cell("print(x + 1)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = tmp_path / "w.ipynb"
    nbformat.write(nb, str(src))
    run_notebook(src, tmp_path / "out.ipynb", {"x": 41}, cell_timeout=60)
    out = nbformat.read(str(tmp_path / "out.ipynb"), as_version=4)
    assert out.cells[-1].outputs[0]["text"].strip() == "42"
    assert not [c for c in out.cells if "interactive" in c.metadata.get("tags", [])][0].outputs
    assert "skip-execution" not in nbformat.read(str(src), as_version=4).cells[1].metadata["tags"]

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

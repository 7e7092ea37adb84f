"""The report in a real browser: headless Chromium (Debian's package, installed here when absent
and possible) reads a report page from the disk with no network, as a reader would."""

import pytest

from hw2lib.report import build_html, check, run_all
from test_report import _tiny_notebook


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    nb = _tiny_notebook(root / "notebooks")
    run_all([nb], root / "build", {"scale": 2})
    return build_html([root / "build" / "executed" / nb.name], root / "report" / "index.html")


def test_clean_page_reads_clean(chromium, page, tmp_path):
    seen = check.check_page(page, chromium=chromium)
    assert seen["images"] == 1 and seen["math"] == 2 and seen["code_hidden"]
    assert check.problems(seen) == []
    assert [a for a, _ in seen["sections"]] == ["p9_tiny-9-tiny", "p9_tiny-part-a"]
    shots = check.section_screenshots(page, tmp_path / "screens", seen, chromium=chromium)
    assert [p.name for p in shots] == ["00-title.png", "01-p9_tiny-9-tiny.png",
                                       "02-p9_tiny-part-a.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in shots)


def test_the_check_catches_what_a_reader_trips_over(chromium, page, tmp_path):
    """Each planted defect is named: a remote request, a missing local file, stderr and raw
    text outputs, text swallowed as a tag, a figure without caption, NaN in metrics.json."""
    bad = page.with_name("bad.html")
    planted = (
        '<img src="https://example.com/x.png"><script src="https://cdn.example.com/a.js"></script>'
        '<img src="fonts/missing.png">'
        '<div class="jp-OutputArea-output" data-mime-type="application/vnd.jupyter.stderr">'
        '<pre>[transformers] a warning</pre></div>'
        '<div class="jp-OutputArea-output" data-mime-type="text/plain"><pre>UNet: 1.54M</pre></div>'
        '<p>the method "a <new1> next to a <new2>"</p>'
        '<div class="jp-OutputArea-output"><img src="data:image/png;base64,'
        'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="></div>')
    bad.write_text(page.read_text().replace("</main>", planted + "</main>"))
    figs = tmp_path / "figures" / "p9"
    figs.mkdir(parents=True)
    (figs / "metrics.json").write_text('{"score": NaN}')
    seen = check.check_page(bad, chromium=chromium)
    found = "\n".join(check.problems(seen, fig_root=tmp_path / "figures"))
    assert "request leaves the machine: https://example.com/x.png" in found
    assert "request leaves the machine: https://cdn.example.com/a.js" in found
    assert "local file requested but absent" in found and "fonts/missing.png" in found
    assert "stderr output: [transformers] a warning" in found
    assert "raw text output: UNet: 1.54M" in found
    assert "text swallowed as an HTML tag: <new1>" in found
    assert found.count("figure without a caption") == 1
    assert "metrics not strict JSON" in found and "NaN" in found


def test_screenshot(chromium, page, tmp_path):
    shot = check.screenshot(page, tmp_path / "shot.png", height=600, chromium=chromium)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000

"""The report in a real browser: headless Chromium (Debian's package, installed here when absent
and possible) loads a report page from the disk with no network."""
import pytest

from hw2lib import browser
from hw2lib.report import build_html, run_all
from test_report import _tiny_notebook


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    nb = _tiny_notebook(root / "notebooks")
    run_all([nb], root / "build", {"scale": 2})
    return build_html([root / "build" / "executed" / nb.name], root / "report" / "index.html",
                      param_base=root / "notebooks")


def test_report_loads_offline(chromium, page):
    seen = browser.check_page(page, chromium=chromium)
    assert seen["images"] >= 1 and seen["broken"] == []
    assert seen["off_machine"] == []
    assert seen["mathjax"] and seen["math"] >= 1 and seen["math_errors"] == 0
    assert seen["code_hidden"]


def test_probe_sees_remote_requests(chromium, page, tmp_path):
    """The check would catch a CDN script or a remote image (they are requested, and fail)."""
    bad = page.with_name("bad.html")
    bad.write_text(page.read_text().replace(
        "</body>", '<img src="https://example.com/x.png"><script src="https://cdn.example.com/a.js">'
                   "</script></body>"))
    seen = browser.check_page(bad, chromium=chromium)
    assert set(seen["off_machine"]) == {"https://example.com/x.png", "https://cdn.example.com/a.js"}
    assert seen["broken"] == ["https://example.com/x.png"]


def test_screenshot(chromium, page, tmp_path):
    shot = browser.screenshot(page, tmp_path / "shot.png", height=600, chromium=chromium)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000

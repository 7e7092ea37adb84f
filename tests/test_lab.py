"""JupyterLab as a person uses it: `make lab` serves notebooks/ on a free loopback port; headless
Chromium (Debian's package, driven by Playwright) opens each notebook, runs Run > Run All Cells,
and checks that no cell shows an error, that every cell ran, and that each explorer (a cell
tagged ``interactive``) draws and redraws when any of its controls moves. Screenshots and Run All
times go to build/lab/. The notebooks on disk must come out unchanged (autosave is off in the
server's private settings).

By default the notebooks that have tiny parameters (test_notebooks.TINY) get them typed into a
new cell below their ``parameters`` cell, as papermill injects its cell, with figures written to
a temporary folder; the explorers keep their own defaults. ``--lab-defaults`` runs every notebook
with its default parameters instead (about 4 minutes on an idle 2-core machine)."""
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from hw2lib.report.run import INTERACTIVE_TAG
from test_notebooks import TINY

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
OUT = ROOT / "build" / "lab"
# s, per notebook: p1_ddpm's defaults take ~100 s on an idle machine, and ten times that when two
# other test runs share its 2 cores; a hang still fails before the test's pytest timeout
RUN_ALL_TIMEOUT = 1200
REDRAW_TIMEOUT = 120  # s, per control move
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
# The private user settings of the test's server: no autosave (Run All would otherwise write
# outputs into the tracked notebooks), no news or update check (no network).
SETTINGS = {"@jupyterlab/docmanager-extension/plugin": {"autosave": False},
            "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                            "checkForUpdates": False}}

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Lab:
    """A `make lab` server started for the test: its URL, token and log."""

    def __init__(self, tmp: Path):
        if shutil.which("make") is None:
            pytest.skip("make is absent: `make lab` is what this test starts")
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
        for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                          ("JUPYTER_DATA_DIR", "data"), ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                          ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")):
            env[name] = str(tmp / sub)
            (tmp / sub).mkdir(parents=True, exist_ok=True)
        env.pop("JUPYTER_TOKEN", None)  # the server makes one and prints it
        for plugin, values in SETTINGS.items():
            f = tmp / "settings" / f"{plugin}.jupyterlab-settings"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(values))
        self.log = OUT / "server.log"
        venv = Path(sys.prefix)
        # -o: the venv exists already (this test runs in it); never reinstall from the test
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                ["make", "-o", f"{venv}/.installed", "lab", f"VENV={venv}", f"LAB_PORT={self.port}"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        url = re.compile(rf"http://127\.0\.0\.1:{self.port}/lab\?token=([0-9a-f]{{16,}})")
        deadline = time.monotonic() + 120
        while not (m := url.search(self.log.read_text())):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("make lab did not print its URL with a token:\n"
                                     + self.log.read_text()[-3000:])
            time.sleep(0.5)
        self.token = m.group(1)
        self.base = f"http://127.0.0.1:{self.port}"

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(f"{self.base}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self):
        for s in self.api("sessions"):
            self.api(f"sessions/{s['id']}", "DELETE")

    def stop(self):
        """SIGTERM to make and the server (its own process group): the server shuts its kernels
        down; SIGKILL if it has not exited after 30 s."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    OUT.mkdir(parents=True, exist_ok=True)
    server = Lab(tmp_path_factory.mktemp("lab"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser_context(chromium, lab):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.off_machine = []

        def route(r):  # nothing but the server may be asked for anything
            if r.request.url.startswith(lab.base):
                return r.continue_()
            context.off_machine.append(r.request.url)
            return r.abort()
        context.route("**/*", route)
        try:
            yield context
        finally:
            browser.close()


@pytest.fixture(scope="module")
def timings():
    seen = {}
    yield seen
    (OUT / "timings.json").write_text(json.dumps(seen, indent=1) + "\n")


_IDLE = """() => /\\| Idle/.test(document.querySelector('#jp-main-statusbar').textContent)
    && ![...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
         .some(e => e.textContent.includes('*'))"""
_STARTED = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
    .some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))"""
# Every output of every cell: its cell index, MIME type and text (an error shows as stderr text
# with a traceback; a warning is stderr without one).
_OUTPUTS = """() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].flatMap((c, i) =>
    [...c.querySelectorAll('.jp-OutputArea-output')].map(o =>
        ({cell: i, mime: o.getAttribute('data-mime-type'), text: o.textContent.slice(0, 2000)})))"""


def _wait_idle(page, timeout: float):
    time.sleep(1)  # the status goes Busy a moment after a command
    page.wait_for_function(_IDLE, timeout=timeout * 1000, polling=500)


def _open(context, lab, name: str):
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda e: page.js_errors.append(str(e)))
    page.goto(f"{lab.base}/lab/tree/{name}?reset&token={lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_function("() => document.querySelector('.jp-NotebookPanel-toolbar .jp-KernelName')"
                           "?.textContent.includes('Python')", timeout=120_000)
    _wait_idle(page, 120)
    return page


def _insert_cell_below(page, index: int, source: str):
    """Select cell ``index``, insert a code cell below it from the keyboard and type ``source``."""
    page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-InputPrompt").click()
    for key in ("Escape", "b", "Enter"):
        page.keyboard.press(key)
    page.keyboard.insert_text(source)
    page.keyboard.press("Escape")


def _errors(page) -> list[str]:
    return [o["text"][:600] for o in page.evaluate(_OUTPUTS)
            if o["mime"] == "application/vnd.jupyter.stderr"
            and "Traceback (most recent call last)" in o["text"]]


def _image_srcs(cell) -> list[str]:
    return cell.locator(".jp-OutputArea-output img").evaluate_all("els => els.map(e => e.src)")


def _controls(cell):
    """(label, action) for each control of the explorer's widgets: a slider moves one step right
    from the keyboard, a toggle-button group gets its next button clicked, a dropdown its next
    option, a checkbox a click."""
    acts = []
    for i in range(cell.locator(".widget-slider").count()):
        slider = cell.locator(".widget-slider").nth(i)
        label = slider.locator(".widget-label").first.inner_text().strip() or f"slider {i}"

        def move(slider=slider):
            slider.locator(".noUi-handle").first.focus()
            slider.page.keyboard.press("ArrowRight")
        acts.append((label, move))
    for i in range(cell.locator(".widget-toggle-buttons").count()):
        group = cell.locator(".widget-toggle-buttons").nth(i)
        label = group.locator(".widget-label").first.inner_text().strip() or f"toggle {i}"
        acts.append((label, lambda g=group: g.locator("button:not(.mod-active)").first.click()))
    for i in range(cell.locator(".widget-dropdown select").count()):
        sel = cell.locator(".widget-dropdown select").nth(i)
        acts.append((f"dropdown {i}", lambda s=sel: s.select_option(
            index=(s.evaluate("e => e.selectedIndex") + 1) % s.locator("option").count())))
    for i in range(cell.locator(".widget-checkbox input").count()):
        acts.append((f"checkbox {i}", lambda c=cell.locator(".widget-checkbox input").nth(i): c.click()))
    return acts


def _exercise_explorer(page, cell, stem: str, k: int) -> dict:
    """Move every control once; each move must change the drawn image."""
    cell.scroll_into_view_if_needed()
    widgets = cell.locator(".jp-OutputArea-output .jupyter-widgets")
    assert widgets.count() > 0, f"{stem}: explorer {k} rendered no widgets (is jupyterlab_widgets installed?)"
    page.wait_for_function("c => c.querySelector('.jp-OutputArea-output img')", arg=cell.element_handle(),
                           timeout=REDRAW_TIMEOUT * 1000)
    acts = _controls(cell)
    assert acts, f"{stem}: explorer {k} has no slider, toggle, dropdown or checkbox"
    page.screenshot(path=OUT / f"{stem}_explorer{k}.png")
    redraws = {}
    for label, act in acts:
        before = _image_srcs(cell)
        t0 = time.monotonic()
        act()
        page.wait_for_function(
            "([c, before]) => { const s = [...c.querySelectorAll('.jp-OutputArea-output img')]"
            ".map(e => e.src); return s.length > 0 && JSON.stringify(s) !== JSON.stringify(before); }",
            arg=[cell.element_handle(), before], timeout=REDRAW_TIMEOUT * 1000)
        redraws[label] = round(time.monotonic() - t0, 2)
    _wait_idle(page, REDRAW_TIMEOUT)
    cell.scroll_into_view_if_needed()
    page.screenshot(path=OUT / f"{stem}_explorer{k}_moved.png")
    return redraws


@pytest.mark.timeout(RUN_ALL_TIMEOUT + 300)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_run_all_in_jupyterlab(name, lab, browser_context, timings, request, tmp_path):
    path = ROOT / "notebooks" / name
    stem = path.stem
    digest = _sha(path)
    nb = nbformat.read(path, as_version=4)
    tagged = lambda tag: [i for i, c in enumerate(nb.cells)  # noqa: E731
                          if c.cell_type == "code" and tag in c.metadata.get("tags", [])]
    explorers = tagged(INTERACTIVE_TAG)
    params = {} if request.config.getoption("--lab-defaults") else TINY.get(name, {})
    page = _open(browser_context, lab, name)
    try:
        cells = page.locator(".jp-Notebook .jp-Cell")
        assert cells.count() == len(nb.cells), "JupyterLab shows another number of cells"
        if params:
            (at,) = tagged("parameters")
            params = {**params, "fig_dir": str(tmp_path / "figures")}
            _insert_cell_below(page, at, "\n".join(f"{k} = {v!r}" for k, v in params.items()))
            explorers = [i + 1 if i > at else i for i in explorers]  # the new cell
        page.click("li.lm-MenuBar-item:has-text('Run')")
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        t0 = time.monotonic()
        page.wait_for_function(_STARTED, timeout=60_000)  # a prompt shows [*] or a number
        _wait_idle(page, RUN_ALL_TIMEOUT)
        seen = {"run_all_s": round(time.monotonic() - t0, 1), "parameters": params or "defaults"}
        timings[stem] = seen
        page.screenshot(path=OUT / f"{stem}.png")
        assert _errors(page) == []
        prompts = page.locator(".jp-CodeCell .jp-InputArea-prompt").all_text_contents()
        assert all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in prompts), \
            f"cells that did not run: {prompts}"
        stderr = [o["text"][:300] for o in page.evaluate(_OUTPUTS)
                  if o["mime"] == "application/vnd.jupyter.stderr"]
        if stderr:
            seen["stderr"] = stderr
        seen["redraw_s"] = [_exercise_explorer(page, cells.nth(i), stem, k)
                            for k, i in enumerate(explorers)]
        assert _errors(page) == [], "an explorer raised"
        assert page.js_errors == [], f"uncaught errors in the page: {page.js_errors}"
        assert browser_context.off_machine == [], "the page asked for something off the machine"
    finally:
        page.close()
        lab.shutdown_kernels()
    assert _sha(path) == digest, f"{name} changed on disk while the test ran it"


def test_error_output_is_detected(lab, browser_context):
    """Negative control: a cell that raises, typed into an open notebook (never saved), is seen."""
    name = NOTEBOOKS[-1]
    digest = _sha(ROOT / "notebooks" / name)
    page = _open(browser_context, lab, name)
    try:
        _insert_cell_below(page, page.locator(".jp-Notebook .jp-Cell").count() - 1, "1/0")
        page.keyboard.press("Shift+Enter")
        _wait_idle(page, 60)
        errors = _errors(page)
        assert len(errors) == 1 and "ZeroDivisionError" in errors[0]
    finally:
        page.close()
        lab.shutdown_kernels()
    assert _sha(ROOT / "notebooks" / name) == digest

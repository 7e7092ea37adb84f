"""The reader's check: open the page in headless Chromium (Debian's ``chromium``) from the disk,
with every network request refused, and list what a reader would trip over: broken images,
requests that leave the machine or ask for a local file that does not exist, formulas that did
not typeset, raw text or stderr output blocks, HTML-like text swallowed as unknown tags
("<new1>"), figures without their caption, metrics.json that is not strict JSON. Then cut a
full-page screenshot into one picture per section for a person to look at.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

_PROBE = """
<script>
window.addEventListener('load', function () {
  function list(sel, f) { return Array.prototype.slice.call(document.querySelectorAll(sel)).map(f); }
  function text(e) { return (e.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 100); }
  var imgs = Array.prototype.slice.call(document.images);
  var toc = list('.title-page nav.toc a[href^="#"]', function (a) { return a.getAttribute('href').slice(1); });
  var res = {
    images: imgs.length,
    broken: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                .map(function (i) { return i.src.slice(0, 80); }),
    resources: performance.getEntriesByType('resource').map(function (e) { return e.name; }),
    local_refs: list('[src], link[href]', function (e) { return e.src || e.href; })
                .filter(function (u) { return u.indexOf('file:') === 0; }),
    math: document.querySelectorAll('math').length,
    math_errors: list('merror', text),
    plain_outputs: list('.jp-OutputArea-output[data-mime-type="text/plain"]', text),
    stderr_outputs: list('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]', text),
    unknown_tags: list('body *', function (e) { return e; })
                .filter(function (e) { return e instanceof HTMLUnknownElement; })
                .map(function (e) { return '<' + e.tagName.toLowerCase() + '> near "' +
                                           text(e.parentElement) + '"'; }),
    uncaptioned: imgs.filter(function (i) {
        var f = i.closest('figure');
        return i.closest('.jp-OutputArea-output') && !(f && f.querySelector('figcaption')); })
                .map(function (i) { return i.alt || i.src.slice(0, 40); }),
    code_hidden: document.body.classList.contains('hide-code'),
    sections: toc.map(function (id) {
        var e = document.getElementById(id);
        return [id, e ? e.getBoundingClientRect().top + window.scrollY : -1]; }),
    height: document.documentElement.scrollHeight
  };
  var pre = document.createElement('pre');
  pre.id = 'hw2-check';
  pre.textContent = JSON.stringify(res);
  document.body.appendChild(pre);
});
</script>
"""
# Any network request fails at once instead of waiting: nothing may leave the machine anyway.
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
          "--no-first-run", "--disable-background-networking", "--disable-component-update",
          "--disable-sync", "--proxy-server=127.0.0.1:9", "--allow-file-access-from-files",
          "--virtual-time-budget=20000", "--hide-scrollbars"]
WIDTH = 1280


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def _chromium(chromium: str | None) -> str:
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium not found: install Debian's chromium package "
                                "(apt-get install chromium)")
    return chromium


def _run(chromium: str, args: list, timeout: float, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, *_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=timeout)


def check_page(page, *, chromium: str | None = None, timeout: float = 120) -> dict:
    """Load ``page`` from the disk and return what the browser saw (see the module docstring);
    ``missing_files`` lists local files the page asks for that do not exist."""
    import tempfile
    chromium = _chromium(chromium)
    page = Path(page).resolve()
    probe = page.with_name(page.stem + ".check.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>", 1),
                     encoding="utf-8")
    try:
        with tempfile.TemporaryDirectory() as profile:
            out = _run(chromium, [f"--window-size={WIDTH},1000", "--dump-dom", probe.as_uri()],
                       timeout, Path(profile))
    finally:
        probe.unlink(missing_ok=True)
    m = re.search(r'<pre id="hw2-check">(.*?)</pre>', out.stdout, re.S)
    if not m:
        raise RuntimeError(f"the page did not finish loading in chromium: {out.stderr[-500:]}")
    import html
    res = json.loads(html.unescape(m.group(1)))
    res["off_machine"] = [u for u in res["resources"] if not u.startswith(("file:", "data:", "blob:"))]
    local = {u for u in res["resources"] + res["local_refs"] if u.startswith("file:")}
    res["missing_files"] = sorted(u for u in local
                                  if not Path(unquote(urlparse(u).path)).exists()
                                  and Path(unquote(urlparse(u).path)) != probe)
    return res


def problems(seen: dict, *, fig_root=None) -> list[str]:
    """What a reader would trip over, one line each (empty: the page reads clean)."""
    from .page import metrics_problems
    out = [f"broken image: {u}" for u in seen["broken"]]
    out += [f"request leaves the machine: {u}" for u in seen["off_machine"]]
    out += [f"local file requested but absent: {u}" for u in seen["missing_files"]]
    out += [f"formula error: {t}" for t in seen["math_errors"]]
    out += [f"raw text output: {t}" for t in seen["plain_outputs"]]
    out += [f"stderr output: {t}" for t in seen["stderr_outputs"]]
    out += [f"text swallowed as an HTML tag: {t}" for t in seen["unknown_tags"]]
    out += [f"figure without a caption: {t}" for t in seen["uncaptioned"]]
    if not seen["code_hidden"]:
        out.append("code is not hidden when the page opens")
    if fig_root is not None:
        out += [f"metrics not strict JSON: {p}" for p in metrics_problems(fig_root)]
    return out


def section_screenshots(page, out_dir, seen: dict, *, chromium: str | None = None,
                        max_height: int = 2200) -> list[Path]:
    """One PNG per section of the table of contents (tall sections cut into pieces of at most
    ``max_height`` px), from one full-page screenshot, into ``out_dir`` (emptied first)."""
    import tempfile

    from PIL import Image
    chromium = _chromium(chromium)
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    height = int(seen["height"]) + 40
    full = out_dir / "full.png"
    with tempfile.TemporaryDirectory() as profile:
        _run(chromium, [f"--window-size={WIDTH},{height}", f"--screenshot={full}",
                        Path(page).resolve().as_uri()], 300, Path(profile))
    im = Image.open(full).convert("RGB")
    starts = [("title", 0)] + [(a, int(y)) for a, y in seen["sections"] if y >= 0]
    starts.sort(key=lambda s: s[1])
    paths = []
    for i, (name, top) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else im.height
        for k, y in enumerate(range(top, end, max_height)):
            if min(y + max_height, end) - y < 40:
                continue
            p = out_dir / f"{len(paths):02d}-{name}{f'-{k + 1}' if end - top > max_height else ''}.png"
            im.crop((0, y, WIDTH, min(y + max_height, end))).save(p)
            paths.append(p)
    full.unlink()
    return paths


def screenshot(page, out, *, width: int = WIDTH, height: int = 1800,
               chromium: str | None = None) -> Path:
    """One screenshot of the top of ``page``."""
    import tempfile
    chromium = _chromium(chromium)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        r = _run(chromium, [f"--window-size={width},{height}", f"--screenshot={out}",
                            Path(page).resolve().as_uri()], 120, Path(profile))
    if r.returncode != 0 or not out.exists():
        raise RuntimeError(f"chromium could not take the screenshot: {r.stderr[-300:]}")
    return out

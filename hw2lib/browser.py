"""Open the report in headless Chromium (Debian's ``chromium``): check that every image loaded,
that MathJax typeset the formulas, and that no request left the machine; take a screenshot."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

_PROBE = """
<script>
window.addEventListener('load', function () {
  function report() {
    var imgs = Array.prototype.slice.call(document.images);
    var res = {
      images: imgs.length,
      broken: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                  .map(function (i) { return i.src.slice(0, 80); }),
      resources: performance.getEntriesByType('resource').map(function (e) { return e.name; }),
      math: document.querySelectorAll('.MathJax, .MathJax_SVG, .MathJax_CHTML, .MathJax_Display').length,
      math_errors: document.querySelectorAll('.MathJax_Error, merror').length,
      math_error_text: Array.prototype.slice.call(document.querySelectorAll('.MathJax_Error, merror'))
                  .map(function (e) { return (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 120); }),
      code_hidden: document.body.classList.contains('hide-code'),
      mathjax: !!(window.MathJax && window.MathJax.Hub)
    };
    var pre = document.createElement('pre');
    pre.id = 'hw2-check';
    pre.textContent = JSON.stringify(res);
    document.body.appendChild(pre);
  }
  if (window.MathJax && MathJax.Hub) { MathJax.Hub.Queue(report); } else { report(); }
});
</script>
"""
# Any network request fails at once instead of waiting: nothing may leave the machine anyway.
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
          "--proxy-server=127.0.0.1:9", "--allow-file-access-from-files",
          "--virtual-time-budget=20000", "--hide-scrollbars"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def check_page(page, *, chromium: str | None = None, timeout: float = 120) -> dict:
    """Load ``page`` from the disk and return what the browser saw: image count, broken images,
    every resource URL requested, MathJax elements and errors, and whether code starts hidden."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium not found: install Debian's chromium package")
    page = Path(page).resolve()
    probe = page.with_name(page.stem + ".check.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>", 1),
                     encoding="utf-8")
    try:
        out = subprocess.run([chromium, *_FLAGS, "--dump-dom", probe.as_uri()], capture_output=True,
                             text=True, timeout=timeout)
    finally:
        probe.unlink(missing_ok=True)
    m = re.search(r'<pre id="hw2-check">(.*?)</pre>', out.stdout, re.S)
    if not m:
        raise RuntimeError(f"the page did not finish loading in chromium: {out.stderr[-500:]}")
    res = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&")
                     .replace("&lt;", "<").replace("&gt;", ">"))
    res["off_machine"] = [u for u in res["resources"] if not u.startswith(("file:", "data:", "blob:"))]
    return res


def screenshot(page, out, *, width: int = 1280, height: int = 1800,
               chromium: str | None = None) -> Path:
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium not found: install Debian's chromium package")
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([chromium, *_FLAGS, f"--window-size={width},{height}", f"--screenshot={out}",
                    Path(page).resolve().as_uri()], capture_output=True, text=True, timeout=120,
                   check=True)
    return out

"""The report build: run notebooks with papermill, record metrics, assemble one offline HTML."""
from __future__ import annotations

import ast
import json
import re
import time
from pathlib import Path

_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.I | re.S)
_REMOTE = r"(?:https?:)?//[\w.-]+"
# What a browser would fetch: src/href attributes, CSS url(...), and URLs inside scripts.
_FETCHED = re.compile(rf"""(?:\b(?:src|href)\s*=\s*["']?|url\(\s*["']?){_REMOTE}""", re.I)
_IN_SCRIPT = re.compile(r"https?://[^\s\"'<>]+", re.I)


# Cells the static report leaves out: parameters, and widgets that only live in a kernel.
REPORT_SKIP_TAGS = {"parameters", "injected-parameters", "interactive"}


def save_metrics(fig_dir, metrics: dict) -> Path:
    """Merge ``metrics`` into ``<fig_dir>/metrics.json`` (created if absent) and return its path."""
    path = Path(fig_dir) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(metrics)
    path.write_text(json.dumps(old, indent=2, sort_keys=True, default=_jsonable) + "\n")
    return path


def _jsonable(x):
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def parse_param(text: str) -> tuple[str, object]:
    """``name=value`` -> (name, value); value as a Python literal when it parses, else a string."""
    if "=" not in text:
        raise ValueError(f"parameter {text!r} is not name=value")
    name, value = text.split("=", 1)
    try:
        return name.strip(), ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name.strip(), value


def run_notebook(src, dst, params: dict, *, kernel_name: str = "python3") -> float:
    """Execute ``src`` into ``dst`` with papermill; only the parameters the notebook declares are
    passed (the Makefile passes one common set to every notebook). Returns the wall time in s.

    The notebook runs with its own folder as working directory, as it does in JupyterLab.
    """
    import papermill as pm
    src, dst = Path(src), Path(dst)
    declared = pm.inspect_notebook(str(src))
    use = {k: v for k, v in params.items() if k in declared}
    dst.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pm.execute_notebook(str(src), str(dst), parameters=use, cwd=str(src.parent),
                        kernel_name=kernel_name, progress_bar=False)
    return time.perf_counter() - t0


def build_html(notebooks, out, *, title: str = "DLCV HW2 report") -> Path:
    """Concatenate executed notebooks into one HTML page with code hidden and no off-machine URL.

    nbconvert's templates load MathJax and require.js from a CDN; those tags are dropped, and the
    result is checked: an off-machine ``src``/``href`` left anywhere is an error.
    """
    import nbformat
    from nbconvert import HTMLExporter
    cells = [nbformat.v4.new_markdown_cell(f"# {title}")]
    for p in notebooks:
        nb = nbformat.read(str(p), as_version=4)
        cells += [c for c in nb.cells if not REPORT_SKIP_TAGS & set(c.metadata.get("tags", []))]
    combined = nbformat.v4.new_notebook(cells=cells, metadata={"title": title})
    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    html, _ = exporter.from_notebook_node(combined)
    html = strip_off_machine(html)
    bad = off_machine_urls(html)
    if bad:
        raise RuntimeError(f"report would load {len(bad)} off-machine resources: {bad[:3]}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def strip_off_machine(html: str) -> str:
    """Drop <script> blocks that load code from another host (CDN MathJax, require.js, mermaid,
    widget managers) and <link> tags that do."""
    def keep(m: re.Match) -> str:
        block = m.group(0)
        return "" if _FETCHED.search(block) or _IN_SCRIPT.search(block) else block
    html = _SCRIPT.sub(keep, html)
    return re.sub(rf"<link[^>]*\bhref\s*=\s*[\"']{_REMOTE}[^>]*>", "", html, flags=re.I)


def off_machine_urls(html: str) -> list[str]:
    """Remote URLs a browser would fetch when opening ``html`` (empty for an offline page)."""
    found = [m.group(0) for m in _FETCHED.finditer(html)]
    for block in _SCRIPT.findall(html):
        found += _IN_SCRIPT.findall(block)
    return found

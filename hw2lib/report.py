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
INTERACTIVE_TAG = "interactive"
REPORT_SKIP_TAGS = {"parameters", "injected-parameters", INTERACTIVE_TAG}
SKIP_EXECUTION_TAG = "skip-execution"  # nbclient's default skip_cells_with_tag


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


# Parameters that name what a notebook writes (or caches), not what it reads.
OUTPUT_PARAMS = {"fig_dir", "cache_dir", "noise_dir"}


def notebook_order(paths) -> list[Path]:
    """The assignment's order: data, p1, p2, p3..., then appendices (``appendix_*``) last."""
    return sorted((Path(p) for p in paths), key=lambda p: (p.name.startswith("appendix"), p.name))


def declared_params(src) -> dict:
    """{name: default value} of a notebook's parameters cell."""
    import papermill as pm
    out = {}
    for name, info in pm.inspect_notebook(str(src)).items():
        try:
            out[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            out[name] = info["default"]
    return out


def _path_state(path: Path) -> list:
    """(relative name, size, mtime) of a file or of every file under a folder (training state
    and temporary files excluded): cheap, and changes whenever a checkpoint is rewritten."""
    if path.is_file():
        st = path.stat()
        return [[path.name, st.st_size, st.st_mtime_ns]]
    rows = []
    for f in sorted(path.rglob("*")):
        if f.is_file() and "state" not in f.relative_to(path).parts[:-1] and f.suffix != ".tmp":
            st = f.stat()
            rows.append([str(f.relative_to(path)), st.st_size, st.st_mtime_ns])
    return rows


def fingerprint(src, params: dict) -> str:
    """What a notebook's outputs depend on: its cells, the hw2lib sources, its effective
    parameters, and the files and folders its input parameters point to."""
    import hashlib
    import nbformat
    src = Path(src)
    h = hashlib.sha256()
    nb = nbformat.read(str(src), as_version=4)
    h.update(json.dumps([(c.cell_type, c.source) for c in nb.cells]).encode())
    lib = Path(__file__).parent
    for f in sorted(lib.rglob("*")):
        if f.suffix in (".py", ".json") and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(lib)).encode() + f.read_bytes())
    effective = {k: params.get(k, v) for k, v in declared_params(src).items()}
    h.update(json.dumps(effective, sort_keys=True, default=str).encode())
    for name, value in sorted(effective.items()):
        if name in OUTPUT_PARAMS or not isinstance(value, str) or not value:
            continue
        path = Path(value) if Path(value).is_absolute() else src.parent / value
        if path.exists():
            h.update(json.dumps([name, _path_state(path)]).encode())
    return h.hexdigest()


def run_all(notebooks, build_dir, params: dict, *, force: bool = False) -> dict[str, float]:
    """Run each notebook whose fingerprint changed since its last run (all with ``force``),
    in the report's order; print and return {notebook: seconds of its last run}. A notebook
    that fails leaves no stamp, so the next call runs it again; those before it stay done."""
    build_dir = Path(build_dir)
    timings_path = build_dir / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    for src in notebook_order(notebooks):
        dst = build_dir / "executed" / src.name
        stamp = dst.with_suffix(".stamp")
        fp = fingerprint(src, params)
        if not force and dst.exists() and stamp.exists() and stamp.read_text() == fp:
            print(f"{src.name}: up to date (last run {timings.get(src.stem, float('nan')):.1f} s)",
                  flush=True)
            continue
        print(f"{src.name}: running ...", flush=True)
        stamp.unlink(missing_ok=True)
        seconds = run_notebook(src, dst, params)
        stamp.write_text(fp)
        timings[src.stem] = round(seconds, 1)
        timings_path.write_text(json.dumps(timings, indent=2) + "\n")
        print(f"{src.name}: {seconds:.1f} s", flush=True)
    return timings


def run_notebook(src, dst, params: dict, *, kernel_name: str = "python3",
                 cell_timeout: float | None = None) -> float:
    """Execute ``src`` into ``dst`` with papermill; only the parameters the notebook declares are
    passed (the Makefile passes one common set to every notebook). Returns the wall time in s.
    ``cell_timeout`` (s) turns a cell that hangs into an error naming that cell.

    Cells tagged ``interactive`` (ipywidgets explorers, which only live in a kernel and which the
    static report leaves out) are not executed: nbclient sometimes waits for a widget cell's
    messages until the cell timeout although the kernel finished it in a second (nbclient
    issue 312; measured here: 600 s in one CI run out of three).

    The notebook runs with its own folder as working directory, as it does in JupyterLab.
    """
    import nbformat
    import papermill as pm
    src, dst = Path(src), Path(dst)
    declared = pm.inspect_notebook(str(src))
    use = {k: v for k, v in params.items() if k in declared}
    nb = nbformat.read(str(src), as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if INTERACTIVE_TAG in tags and SKIP_EXECUTION_TAG not in tags:
            cell.metadata["tags"] = [*tags, SKIP_EXECUTION_TAG]
    dst.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pm.execute_notebook(nb, str(dst), parameters=use, cwd=str(src.parent),
                        kernel_name=kernel_name, progress_bar=False,
                        execution_timeout=cell_timeout)
    return time.perf_counter() - t0


def build_html(notebooks, out, **kw) -> Path:
    """One offline HTML page from executed notebooks (see :mod:`hw2lib.report_html`)."""
    from .report_html import build_html as _build
    return _build(notebooks, out, **kw)


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

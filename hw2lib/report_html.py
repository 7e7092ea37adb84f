"""The report page: executed notebooks -> one HTML file that works from the disk, offline.

A title page with a table of contents, one section per notebook in the assignment's order,
code hidden behind a toggle, every figure captioned with the parameters, seed, checkpoint and
commit that made it, and formulas typeset by a MathJax copied next to the page (from the
``jupyter-server-mathjax`` package; nothing is fetched from a CDN).
"""
from __future__ import annotations

import html as _html
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

from .report import REPORT_SKIP_TAGS, notebook_order, off_machine_urls, strip_off_machine

MATHJAX_DIR = "mathjax"
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
_HEADING = re.compile(r"^(#{2,3})\s+(.+?)\s*$", re.M)
# Always worth naming under a figure, when the notebook has them.
_ALWAYS = ("mode", "seed")

TOGGLE = """
<style>
body.hide-code .jp-CodeCell .jp-Cell-inputWrapper { display: none; }
#code-toggle { position: fixed; top: 12px; right: 16px; z-index: 10; padding: 4px 10px;
  font: 13px sans-serif; border: 1px solid #888; border-radius: 4px; background: #fff; cursor: pointer; }
.figure-caption { font: 12px/1.4 sans-serif; color: #444; margin: 2px 0 14px 0; }
.title-page { border-bottom: 1px solid #ccc; margin-bottom: 24px; padding-bottom: 12px; }
.title-page .meta { color: #555; font-size: 13px; }
@media print { #code-toggle { display: none; } }
</style>
<button id="code-toggle" type="button"
  onclick="document.body.classList.toggle('hide-code');
           this.textContent = document.body.classList.contains('hide-code') ? 'Show code' : 'Hide code';">
Show code</button>
<script>document.body.classList.add('hide-code');</script>
"""


def git_commit(cwd=None) -> str:
    """The commit the report is built from ("+dirty" when tracked files are modified)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], capture_output=True,
                              text=True, cwd=cwd).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, cwd=cwd).stdout.strip()
    except OSError:
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def _effective_params(nb) -> dict:
    """The parameters a notebook ran with: its parameters cell overridden by papermill's."""
    import ast
    params = {}
    for c in nb.cells:
        tags = set(c.metadata.get("tags", []))
        if c.cell_type == "code" and tags & {"parameters", "injected-parameters"}:
            for node in ast.parse(c.source).body:
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    try:
                        params[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        pass
    return params


def _checkpoint_note(value, base: Path) -> str | None:
    """"folder (N steps, commit abc1234)" for a parameter naming a checkpoint with a manifest."""
    if not isinstance(value, str) or not value:
        return None
    path = Path(value) if Path(value).is_absolute() else base / value
    man = path / "manifest.json"
    if not man.exists():
        return None
    m = json.loads(man.read_text())
    bits = [f"{m['steps_done']} steps" if "steps_done" in m else None,
            f"trained at commit {str(m['commit'])[:7]}" if m.get("commit") else None]
    return f"{path.name} ({', '.join(b for b in bits if b)})"


def caption(cell_source: str, params: dict, base: Path, commit: str, number: int,
            notebook: str) -> str:
    """Figure n's caption: the parameters its cell uses, seed, checkpoints, commit."""
    used = {k: v for k, v in params.items()
            if k in _ALWAYS or re.search(rf"\b{re.escape(k)}\b", cell_source)}
    ckpts = [n for k, v in params.items() if (n := _checkpoint_note(v, base))]
    shown = ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in used.items()
                      if not str(k).endswith("dir") and _checkpoint_note(v, base) is None)
    parts = [f"<b>Figure {number}</b> ({notebook})", shown,
             ("checkpoint " + "; ".join(ckpts)) if ckpts else "", f"report commit {commit}"]
    return "<p class=\"figure-caption\">" + " &middot; ".join(_html.escape(p) if i else p
                                                             for i, p in enumerate(parts) if p) + "</p>"


def _has_image(cell) -> bool:
    return any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def assemble(notebooks, *, title: str, commit: str, param_base: Path = Path("notebooks")):
    """(combined notebook node, table of contents [(level, text, anchor)]). Path parameters
    are read relative to ``param_base`` (the notebooks ran there)."""
    import nbformat
    cells, toc, fig = [], [], 0
    for p in notebook_order(notebooks):
        nb = nbformat.read(str(p), as_version=4)
        params = _effective_params(nb)
        base = Path(param_base)
        for c in nb.cells:
            if REPORT_SKIP_TAGS & set(c.metadata.get("tags", [])):
                continue
            if c.cell_type == "markdown":
                def anchor(m):
                    level, text = len(m.group(1)), m.group(2)
                    a = f"{Path(p).stem}-{_slug(text)}"
                    toc.append((level, text, a))
                    return f'<a id="{a}"></a>\n\n{m.group(0)}'
                c = nbformat.v4.new_markdown_cell(_HEADING.sub(anchor, c.source))
            cells.append(c)
            if c.cell_type == "code" and _has_image(c):
                for o in c.outputs:  # one caption per image output
                    if "image/png" in o.get("data", {}):
                        fig += 1
                        cells.append(nbformat.v4.new_markdown_cell(
                            caption(c.source, params, base, commit, fig, Path(p).stem)))
    made = time.strftime("%Y-%m-%d %H:%M")
    items = "\n".join(f'{"  " if level == 3 else ""}- <a href="#{a}">{_html.escape(text)}</a>'
                      for level, text, a in toc)
    front = (f'<div class="title-page">\n\n# {title}\n\n<p class="meta">Built {made} from commit '
             f"<code>{commit}</code>. Every figure and number below was computed by the notebooks "
             f"in <code>notebooks/</code> (code hidden: the button at the top right shows it).</p>"
             f"\n\n**Contents**\n\n{items}\n\n</div>")
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(front)] + cells,
                                    metadata={"title": title}), toc


def copy_mathjax(out_dir: Path) -> Path:
    """MathJax 2.7 from the jupyter-server-mathjax package into ``out_dir/mathjax``."""
    import jupyter_server_mathjax
    src = Path(jupyter_server_mathjax.__file__).parent / "static"
    dst = out_dir / MATHJAX_DIR
    if not (dst / "MathJax.js").exists():
        shutil.copytree(src, dst, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.md", "test*", "unpacked"))
    return dst


def build_html(notebooks, out, *, title: str = "DLCV HW2: diffusion models and CLIP",
               commit: str | None = None, param_base="notebooks") -> Path:
    from nbconvert import HTMLExporter
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    commit = commit or git_commit(Path(__file__).parent)
    combined, _ = assemble(notebooks, title=title, commit=commit, param_base=Path(param_base))
    exporter = HTMLExporter(template_name="lab", exclude_input_prompt=True,
                            exclude_output_prompt=True,
                            mathjax_url=f"{MATHJAX_DIR}/MathJax.js?config={MATHJAX_CONFIG}")
    page, _ = exporter.from_notebook_node(combined)
    page = strip_off_machine(page)
    page = page.replace("<body", "<body data-report=\"hw2\"", 1)
    page = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + TOGGLE, page, count=1)
    bad = off_machine_urls(page)
    if bad:
        raise RuntimeError(f"report would load {len(bad)} off-machine resources: {bad[:3]}")
    copy_mathjax(out.parent)
    out.write_text(page, encoding="utf-8")
    return out

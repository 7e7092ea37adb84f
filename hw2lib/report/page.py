"""The report page: executed notebooks -> one HTML file that works from the disk, offline.

nbconvert does the work: the executed notebooks are joined into one notebook node, a few
preprocessors prepare it (cells tagged parameters/interactive removed by nbconvert's
``TagRemovePreprocessor``; heading anchors and the table of contents; figure numbers; formulas
to MathML), and the ``hw2`` template (extends ``lab``) renders it with no script from
elsewhere. A title page names the mode, the stand-ins and the course's reference figures.
"""
from __future__ import annotations

import html as _html
import json
import os
import re
import subprocess
import time
from pathlib import Path

from .. import modes
from .run import REPORT_SKIP_TAGS, notebook_order

TEMPLATES = Path(__file__).parent / "templates"
_HEADING = re.compile(r"^(#{2,3})\s+(.+?)\s*$", re.M)
_REMOTE = r"(?:https?:)?//[\w.-]+"
# What a browser would fetch: src/href attributes, CSS url(...), and URLs inside scripts.
_FETCHED = re.compile(rf"""(?:\b(?:src|href)\s*=\s*["']?|url\(\s*["']?){_REMOTE}""", re.I)
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.I | re.S)
_IN_SCRIPT = re.compile(r"https?://[^\s\"'<>]+", re.I)
# papermill's red "An Exception was encountered" banner cells: the section notice says it better
_PAPERMILL_ERROR = "papermill-error-cell-tag"


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


def off_machine_urls(html: str) -> list[str]:
    """Remote URLs a browser would fetch when opening ``html`` (empty for an offline page)."""
    found = [m.group(0) for m in _FETCHED.finditer(html)]
    for block in _SCRIPT.findall(html):
        found += _IN_SCRIPT.findall(block)
    return found


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def effective_params(nb) -> dict:
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


def _notice(stem: str, st: dict) -> str:
    kind = "was skipped" if st["status"] == "skipped" else "failed"
    return (f'<div class="section-notice"><b>This section {kind}.</b> '
            f"{_html.escape(st.get('error', ''))}<br>The notebook's whole output is in "
            f"<code>build/executed/{_html.escape(stem)}.ipynb</code>.</div>")


def _section_cells(nb, stem: str, st: dict | None) -> list:
    """The cells a notebook contributes: all of them, or for a skipped or failed run its
    heading cell and a notice saying why."""
    import nbformat
    if not st or st.get("status") not in ("skipped", "failed"):
        return list(nb.cells)
    head = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    return [c for c in (head, nbformat.v4.new_markdown_cell(_notice(stem, st))) if c is not None]


def _anchor_headings(cell, stem: str, toc: list) -> None:
    """An anchor before each ## / ### heading of a markdown cell, and its TOC entry."""
    def anchor(m):
        level, text = len(m.group(1)), m.group(2)
        a = f"{stem}-{_slug(text)}"
        toc.append((level, text, a))
        return f'<a id="{a}"></a>\n\n{m.group(0)}'
    cell.source = _HEADING.sub(anchor, cell.source)


def _to_mathml(cell) -> None:
    """Formulas of a markdown cell and of computed-markdown outputs to MathML."""
    from .mathml import markdown_to_mathml
    if cell.cell_type == "markdown":
        cell.source = markdown_to_mathml(cell.source)
    for o in cell.get("outputs", []):
        if "text/markdown" in o.get("data", {}):
            o["data"]["text/markdown"] = markdown_to_mathml(o["data"]["text/markdown"])


# (term, what it means here): the words the sections use without stopping to define them
TERMS = (
    ("n, SE", "n: the number of images a figure is computed on; SE: one standard error of it "
              "(for an accuracy p, the square root of p(1 - p)/n)"),
    ("w", "the classifier-free guidance weight: ε̂ = (1 + w) ε(x, c) - w ε(x, ∅); w = 0 is the "
          "plain conditional model"),
    ("η", "DDIM's noise level: 0 is the deterministic sampler, 1 DDPM's ancestral one"),
    ("DDIM-20, DDPM-20", "a sampler and its number of steps (DDPM below 1,000 steps walks a "
                         "strided grid of them)"),
    ("project CNN", "the digit classifier this project trains on both digit sets' training "
                    "splits: it reads P1's samples, and its last hidden layer gives the features "
                    "KID compares"),
    ("steps, evaluations", "sampler steps; a guided step costs two network evaluations per image "
                           "(with and without the class)"),
    ("KID", "kernel inception distance: how far two image sets' feature distributions are "
            "apart (here on the project CNN's features); 0 when they match"),
    ("colour TV", "total variation distance between the histograms of two sets' mean image "
                  "colours: 0 for the same colours, 1 for none shared"),
    ("floor", "the same statistic between two real samples of the data at the same size: what "
              "chance alone gives, against which a ratio (×) is read (for KID, whose floor is "
              "near 0, the ratio is to the floor plus two of its standard deviations)"),
    ("slerp, lerp", "interpolation along the sphere or along the straight line between two "
                    "noises"),
    ("<new1>, <new2>", "the two new words that textual inversion learns for the P3.2 concepts"),
)


def title_page(mode: str, commit: str, toc, title: str, student_id: str = "") -> str:
    """The title page (markdown with HTML): the student's id when given, mode banner, stand-ins,
    reference figures, contents."""
    e = _html.escape
    made = time.strftime("%Y-%m-%d %H:%M")
    if mode == "embedded":
        banner = ("<b>Embedded mode.</b> Everything below was computed on a CPU from data that "
                  "pip packages ship and from small models trained by this project: the "
                  "images, models and numbers are <b>stand-ins</b> for the course's, built to show "
                  "the same phenomena. <code>make report MODE=course DATA=hw2_data</code> runs "
                  "the same notebooks on the course's data and models.")
        rows = "".join(f"<tr><td>{e(a)}</td><td>{e(b)}</td><td>{e(c)}</td></tr>"
                       for a, b, c in modes.STAND_INS)
        stand_ins = ("\n\n**The stand-ins**\n\n<table class=\"hw2-table\"><thead><tr><th>course</th>"
                     "<th>embedded stand-in</th><th>how it differs</th></tr></thead>"
                     f"<tbody>{rows}</tbody></table>")
    else:
        banner = ("<b>Course mode.</b> The course's <code>hw2_data</code>, face UNet, CLIP "
                  "ViT-B/32 and Stable Diffusion outputs, as given to <code>make report</code>.")
        stand_ins = ""
    ref = "".join(f"<tr><td>{e(a)}</td><td>{e(b)}</td><td>{e(c)}</td></tr>"
                  for a, b, c in modes.COURSE_REFERENCE)
    reference = ("\n\n**The course's reference figures** (for context: reported by public "
                 "solutions on the course's data, not measured by this report)\n\n"
                 "<table class=\"hw2-table\"><thead><tr><th>what</th><th>figure</th>"
                 f"<th>source</th></tr></thead><tbody>{ref}</tbody></table>")
    terms = ("\n\n**Terms used below**\n\n<table class=\"hw2-table terms\"><tbody>"
             + "".join(f"<tr><td>{e(a)}</td><td>{e(b)}</td></tr>" for a, b in TERMS)
             + "</tbody></table>")
    items = "\n".join(f'{"  " if level == 3 else ""}- <a href="#{a}">{e(text)}</a>'
                      for level, text, a in toc)
    student = (f'<p class="student-id">Student ID: <b>{e(student_id)}</b></p>\n\n'
               if student_id else "")
    return (f'<div class="title-page">\n\n# {e(title)}\n\n{student}'
            f'<div class="mode-banner {mode}">{banner}</div>\n\n'
            f'<p class="meta">Built {made} from commit <code>{e(commit)}</code>. Every figure and '
            f"number below was computed by code: by the notebooks in <code>notebooks/</code><span "
            f'class="screen-only"> (code hidden: the button at the top right shows it)</span>, or, '
            f"where a section says it was measured once for its checkpoint, by the "
            f"<code>python -m hw2lib</code> command it names, whose stored result the notebook "
            f"reads.</p>"
            f"{stand_ins}{reference}{terms}\n\n"
            f'**Contents**\n\n<nav class="toc">\n\n{items}\n\n</nav>\n\n</div>')


def assemble(notebooks, *, title: str, commit: str, status: dict | None = None,
             student_id: str = ""):
    """(one notebook node with the title page and every section, table of contents, mode)."""
    import nbformat
    from nbconvert.preprocessors import TagRemovePreprocessor
    drop = TagRemovePreprocessor(remove_cell_tags=(*REPORT_SKIP_TAGS, _PAPERMILL_ERROR),
                                 enabled=True)
    cells, toc, fig, mode_seen = [], [], 0, set()
    for p in notebook_order(notebooks):
        nb = nbformat.read(str(p), as_version=4)
        params = effective_params(nb)
        if "mode" in params:  # the appendix has no mode: it shows whatever ran
            mode_seen.add(params["mode"])
        nb, _ = drop.preprocess(nb, {})
        stem = Path(p).stem
        for c in _section_cells(nb, stem, (status or {}).get(stem)):
            if c.cell_type == "markdown":
                _anchor_headings(c, stem, toc)
            _to_mathml(c)
            for o in c.get("outputs", []):
                if "image/png" in o.get("data", {}) and o.get("metadata", {}).get("hw2"):
                    fig += 1
                    o["metadata"]["hw2"]["number"] = fig
            cells.append(c)
    if len(mode_seen) > 1:
        raise ValueError(f"the notebooks ran in different modes {sorted(mode_seen)}: rerun "
                         "make report (FORCE=1)")
    mode = mode_seen.pop() if mode_seen else "embedded"
    front = nbformat.v4.new_markdown_cell(title_page(mode, commit, toc, title, student_id))
    return nbformat.v4.new_notebook(cells=[front] + cells, metadata={"title": title}), toc, mode


def build_html(notebooks, out, *, title: str = "DLCV HW2: diffusion models and CLIP",
               commit: str | None = None, status: dict | None = None,
               student_id: str = "") -> Path:
    """Render executed ``notebooks`` into the offline page ``out`` (written atomically);
    ``status`` ({stem: {"status", "error"}} from :func:`~hw2lib.report.run.run_all`) turns a
    skipped or failed section into its heading and a notice; ``student_id`` goes on the
    title page."""
    from nbconvert import HTMLExporter
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    commit = commit or git_commit(Path(__file__).parent)
    combined, _, _ = assemble(notebooks, title=title, commit=commit, status=status,
                              student_id=student_id)
    exporter = HTMLExporter(template_name="hw2", extra_template_basedirs=[str(TEMPLATES)],
                            exclude_input_prompt=True, exclude_output_prompt=True)
    page, _ = exporter.from_notebook_node(combined, resources={"hw2_commit": commit})
    bad = off_machine_urls(page)
    if bad:
        raise RuntimeError(f"report would load {len(bad)} off-machine resources: {bad[:3]}")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)
    return out


def metrics_problems(fig_root) -> list[str]:
    """metrics.json files under ``fig_root`` that are not strict JSON (NaN, Infinity)."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    bad = []
    for f in sorted(Path(fig_root).glob("*/metrics.json")):
        try:
            json.loads(f.read_text(), parse_constant=refuse)
        except ValueError as e:
            bad.append(f"{f}: {e}")
    return bad

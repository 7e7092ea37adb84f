"""The report as a PDF to hand in: Debian's ``chromium`` prints the built page headless, offline
(the flags of :mod:`.check`: every network request refused). The look on paper is the page's
print stylesheet (``templates/hw2/print.css``): A4, page numbers, the title page alone, each
problem on a new page, no figure or table split, no code or buttons.

Reading the PDF back (pages as text and as PNGs, where each section starts) uses poppler's
``pdftotext`` and ``pdftoppm`` (Debian's poppler-utils); only the checks need them.
"""
from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .check import _chromium, _run

_STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
_H2 = re.compile(r"<h2\b[^>]*>(.*?)(?:<a class=\"anchor-link\"|</h2>)", re.S)


def pdf_name(student_id: str = "") -> str:
    """The file name the course expects: ``hw2_<id>.pdf``, or ``hw2_report.pdf`` without an id."""
    if student_id and not _STUDENT_ID.match(student_id):
        raise ValueError(f"STUDENT_ID {student_id!r} is not a plain id (letters, digits, _ or -)")
    return f"hw2_{student_id or 'report'}.pdf"


def print_pdf(page, out, *, chromium: str | None = None, timeout: float = 600) -> Path:
    """Print the HTML ``page`` to the PDF ``out`` (written atomically) with headless chromium."""
    chromium = _chromium(chromium)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        r = _run(chromium, ["--no-pdf-header-footer", f"--print-to-pdf={tmp}",
                            Path(page).resolve().as_uri()], timeout, Path(profile))
    if not tmp.exists() or tmp.read_bytes()[:5] != b"%PDF-":
        raise RuntimeError(f"chromium did not print {page}: {r.stderr[-500:]}")
    tmp.replace(out)
    return out


def section_headings(page) -> list[str]:
    """The text of each ``##`` heading of the HTML ``page``, in order: where a page must start."""
    text = Path(page).read_text(encoding="utf-8")
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", "", h)).split()) for h in _H2.findall(text)]


def _poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise FileNotFoundError(f"{tool} not found: install Debian's poppler-utils")
    return path


def page_texts(pdf) -> list[str]:
    """The text of each page of ``pdf`` (``pdftotext -layout``), one string per page."""
    out = subprocess.run([_poppler("pdftotext"), "-layout", str(pdf), "-"], capture_output=True,
                         text=True, check=True).stdout
    return out.split("\f")[:-1]  # every page ends with a form feed


def section_pages(texts: list[str], headings: list[str]) -> list[tuple[str, int | None]]:
    """[(heading, the 1-based page it opens, or None when no page begins with it)], in order."""
    def first_line(t):
        return next((" ".join(line.split()) for line in t.splitlines() if line.strip()), "")
    firsts = [first_line(t) for t in texts]
    found, start = [], 0
    for h in headings:  # in order: two sections with one title open two different pages
        page = next((i + 1 for i in range(start, len(firsts)) if firsts[i] == h), None)
        found.append((h, page))
        start = page or start
    return found


def page_pngs(pdf, out_dir, *, dpi: int = 50) -> list[Path]:
    """Every page of ``pdf`` as a PNG (``pdftoppm``) in ``out_dir`` (emptied first), in order."""
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    subprocess.run([_poppler("pdftoppm"), "-png", "-r", str(dpi), str(pdf), str(out_dir / "page")],
                   check=True, capture_output=True)
    return sorted(out_dir.glob("page-*.png"))


def is_blank(png, *, footer: float = 18 / 297) -> bool:
    """True when nothing is printed on the page image above its bottom ``footer`` fraction (the
    margin that carries the page number, 18 mm of A4's 297 mm)."""
    from PIL import Image, ImageOps
    im = ImageOps.invert(Image.open(png).convert("L"))
    return im.crop((0, 0, im.width, int(im.height * (1 - footer)))).getbbox() is None


def read_back(pdf, page, pngs=None) -> dict:
    """What the printed ``pdf`` of ``page`` looks like: ``pages`` (count), ``starts`` (see
    :func:`section_pages`), and with a ``pngs`` folder every page as a PNG there and ``blank``,
    the names of the pages with nothing printed on them."""
    texts = page_texts(pdf)
    seen = {"pages": len(texts), "starts": section_pages(texts, section_headings(page)),
            "blank": []}
    if pngs:
        seen["blank"] = [p.name for p in page_pngs(pdf, pngs) if is_blank(p)]
    return seen


def hand_in(page, *, out=None, student_id: str = "", pngs=None) -> tuple[Path, list[str]]:
    """Print the built ``page`` to the PDF the course collects; then, when poppler-utils is
    there, check where each section starts and that no page is blank, writing every page as a
    PNG into ``pngs``. Returns (the PDF, the problems found)."""
    import time

    from ..errors import InputError, MissingInputError
    page = Path(page)
    if not page.exists():
        raise MissingInputError(f"{page} not found: run make report first")
    try:
        out = Path(out or page.with_name(pdf_name(student_id)))
    except ValueError as e:
        raise InputError(str(e)) from None
    if student_id and f"Student ID: <b>{student_id}</b>" not in page.read_text():
        raise InputError(f"{page} does not show student id {student_id} on its title page: "
                         "build it with --student-id (make pdf STUDENT_ID=... does)")
    t0 = time.perf_counter()
    print_pdf(page, out)
    print(f"{out}: {time.perf_counter() - t0:.1f} s")
    if not (shutil.which("pdftotext") and shutil.which("pdftoppm")):
        print("(install poppler-utils to check the pages and see them as PNGs)")
        return out, []
    seen = read_back(out, page, pngs)
    print(f"{seen['pages']} pages; sections start on pages "
          + ", ".join(f"{p or '?'} ({h})" for h, p in seen["starts"])
          + (f"; every page as a PNG in {pngs}/" if pngs else ""))
    bad = [f"section does not start a page: {h}" for h, p in seen["starts"] if p is None]
    return out, bad + [f"blank page: {name}" for name in seen["blank"]]

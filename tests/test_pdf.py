"""The PDF to hand in: a page of three tiny sections (one of them skipped) printed by headless
chromium through ``python -m hw2lib report pdf``, then read back with poppler: page count,
every ``##`` section opening a page, no blank page, page numbers, no code, formulas typeset."""
import pytest

from hw2lib.cli import main
from hw2lib.report import build_html, pdf, run_all
from test_report import _tiny_notebook

HEADINGS = ["Problem 7: first", "Problem 8: skipped", "Problem 9: last"]
STUDENT = "r12345678"


@pytest.fixture(scope="module")
def printed(tmp_path_factory, chromium, poppler):
    """(page, pdf, page PNGs) for the three-section page, printed by the CLI."""
    root = tmp_path_factory.mktemp("pdf")
    nbs = [_tiny_notebook(root / "notebooks", "p7_first.ipynb", heading=HEADINGS[0]),
           _tiny_notebook(root / "notebooks", "p8_skip.ipynb", heading=HEADINGS[1],
                          extra="from hw2lib.errors import MissingInput\nraise MissingInput('no')"),
           _tiny_notebook(root / "notebooks", "p9_last.ipynb", heading=HEADINGS[2])]
    status = run_all(nbs, root / "build", {"scale": 2})
    page = build_html([root / "build" / "executed" / p.name for p in nbs],
                      root / "report" / "index.html", status=status, student_id=STUDENT)
    pngs = root / "pages"
    assert main(["report", "pdf", str(page), "--student-id", STUDENT, "--pngs", str(pngs)]) == 0
    out = page.with_name(f"hw2_{STUDENT}.pdf")
    return page, out, sorted(pngs.glob("*.png"))


def test_every_section_opens_a_page_and_no_page_is_blank(printed):
    page, out, pngs = printed
    texts = pdf.page_texts(out)
    assert pdf.section_headings(page) == HEADINGS
    starts = [p for _, p in pdf.section_pages(texts, HEADINGS)]
    assert None not in starts and starts == list(range(starts[0], starts[0] + 3))
    assert 2 <= starts[0] <= 3  # the title page (with its contents) takes one or two pages
    assert len(texts) == len(pngs) == starts[-1]  # each tiny section fits on its page
    assert not [p.name for p in pngs if pdf.is_blank(p)]


def test_title_page_numbers_and_what_paper_leaves_out(printed):
    _, out, _ = printed
    texts = pdf.page_texts(out)
    assert f"Student ID: {STUDENT}" in texts[0] and "Embedded mode." in texts[0]
    assert "from commit" in texts[0] and "button" not in texts[0]
    n = len(texts)
    assert ["".join(t.strip().splitlines()[-1].split()) for t in texts] == [
        f"{k}/{n}" for k in range(1, n + 1)]  # the page number, bottom centre
    whole = "\n".join(texts)
    assert "Show code" not in whole and "import matplotlib" not in whole and "¶" not in whole
    assert "\U0001d6fc" in whole  # MathML typeset: alpha in mathematical italic
    assert whole.count("Figure 1.") == 1 and "This section was skipped" in whole


def test_pdf_name_and_student_id_checks(tmp_path, printed, capsys):
    page = printed[0]
    assert pdf.pdf_name() == "hw2_report.pdf" and pdf.pdf_name("b09901001") == "hw2_b09901001.pdf"
    with pytest.raises(ValueError):
        pdf.pdf_name("../x")
    assert main(["report", "pdf", str(page), "--student-id", "../x"]) == 2
    assert main(["report", "pdf", str(page), "--student-id", "b0000000"]) == 2  # not on the page
    assert "does not show student id" in capsys.readouterr().err
    assert main(["report", "pdf", str(tmp_path / "absent.html")]) == 2


def test_make_pdf_brings_the_page_up_to_date_with_the_id():
    """`make pdf STUDENT_ID=...` runs `report all` (page with the id), then prints that page."""
    import shlex
    import subprocess
    from pathlib import Path
    out = subprocess.run(["make", "-n", "pdf", f"STUDENT_ID={STUDENT}"],
                         cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                         check=True).stdout.replace("\\\n", " ").splitlines()
    build = next(i for i, ln in enumerate(out) if "hw2lib report all" in ln)
    printing = next(i for i, ln in enumerate(out) if "hw2lib report pdf" in ln)
    assert build < printing
    for i in (build, printing):
        args = shlex.split(out[i])
        assert args[args.index("--student-id") + 1] == STUDENT

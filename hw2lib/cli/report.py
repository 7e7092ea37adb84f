"""``report run|build|all|check|pdf``."""
from __future__ import annotations

import sys
from pathlib import Path

from .common import group


def cmd_run(args) -> int:
    from ..report import parse_param, run_notebook
    seconds = run_notebook(args.notebook, args.out, dict(parse_param(p) for p in args.param))
    print(f"{Path(args.notebook).name}: {seconds:.1f} s")
    return 0


def cmd_build(args) -> int:
    from ..report import build_html
    print(build_html(args.notebooks, args.out, student_id=args.student_id))
    return 0


def cmd_all(args) -> int:
    """Exit 1 only when a section failed; 2 for bad parameters."""
    from ..report import parse_param
    from ..report.build import report_all
    try:
        status = report_all(args.notebooks, args.build, args.out,
                            dict(parse_param(p) for p in args.param), force=args.force,
                            student_id=args.student_id, jobs=args.jobs)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 1 if any(s["status"] == "failed" for s in status.values()) else 0


def cmd_check(args) -> int:
    from ..report import check
    page = Path(args.page)
    if not page.exists():
        print(f"error: {page} not found: run make report first", file=sys.stderr)
        return 2
    seen = check.check_page(page)
    found = check.problems(seen, fig_root=args.figures)
    print(f"{seen['images']} images, {seen['math']} formulas, {len(seen['sections'])} sections; "
          f"{len(found)} problem(s)")
    for p in found:
        print("  -", p)
    if args.screens:
        shots = check.section_screenshots(page, args.screens, seen)
        print(f"{len(shots)} section screenshots in {args.screens}/")
    return 1 if found else 0


def cmd_pdf(args) -> int:
    from ..report.pdf import hand_in
    _, bad = hand_in(args.page, out=args.out, student_id=args.student_id, pngs=args.pngs)
    for line in bad:
        print("  -", line)
    return 1 if bad else 0


def register(sub) -> None:
    s = group(sub, "report", "run notebooks and assemble the HTML report")
    r = s.add_parser("run", help="execute one notebook with papermill")
    r.add_argument("notebook")
    r.add_argument("out", help="where the executed notebook goes")
    r.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a parameter; passed only if the notebook declares it")
    r.set_defaults(func=cmd_run)
    b = s.add_parser("build", help="assemble executed notebooks into one offline HTML page")
    b.add_argument("notebooks", nargs="+")
    b.add_argument("--out", required=True)
    b.add_argument("--student-id", default="", help="put on the title page")
    b.set_defaults(func=cmd_build)
    a = s.add_parser("all", help="run the notebooks whose inputs changed, then build the page")
    a.add_argument("notebooks", nargs="+")
    a.add_argument("--build", default="build", help="executed notebooks, stamps, timings.json")
    a.add_argument("--out", default="report/index.html")
    a.add_argument("--force", action="store_true", help="run every notebook")
    a.add_argument("--jobs", type=int, default=1,
                   help="notebooks run at a time, each with cpu_count/jobs torch threads")
    a.add_argument("--student-id", default="", help="put on the title page")
    a.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    a.set_defaults(func=cmd_all)
    c = s.add_parser("check", help="read the page in headless chromium as a reader would")
    c.add_argument("page", nargs="?", default="report/index.html")
    c.add_argument("--figures", default="figures", help="where the notebooks wrote metrics.json")
    c.add_argument("--screens", default="build/screens",
                   help="one screenshot per section goes here ('' for none)")
    c.set_defaults(func=cmd_check)
    d = s.add_parser("pdf", help="print the built page to a PDF with headless chromium")
    d.add_argument("page", nargs="?", default="report/index.html")
    d.add_argument("--out", help="default: next to the page, hw2_<id>.pdf or hw2_report.pdf")
    d.add_argument("--student-id", default="", help="must be on the page's title page already")
    d.add_argument("--pngs", default="build/pdf_pages",
                   help="every page as a PNG goes here ('' for none; needs poppler-utils)")
    d.set_defaults(func=cmd_pdf)

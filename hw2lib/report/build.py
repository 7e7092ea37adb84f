"""``make report``: run the notebooks whose inputs changed, then build the page whatever
happened (a skipped or failed section shows on the page as a notice)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from .page import build_html
from .pdf import pdf_name
from .run import check_params, run_all

STATUSES = ("ran", "up to date", "skipped", "failed")


def summary(status: dict, seconds: float) -> str:
    """``report: 5 ran, 1 skipped (p3_personalize); 12.3 s``."""
    counts = {k: [n for n, s in status.items() if s["status"] == k] for k in STATUSES}
    return ("report: " + ", ".join(f"{len(v)} {k}" + (f" ({', '.join(v)})" if v and k in
                                                     ("skipped", "failed") else "")
                                   for k, v in counts.items() if v)
            + f"; {seconds:.1f} s")


def report_all(notebooks, build_dir, out, params: dict, *, force: bool = False,
               student_id: str = "", jobs: int = 1) -> dict:
    """Run, build, print the page's path and the summary; returns each section's status.
    Bad parameters or student id raise ``ValueError`` before anything runs."""
    t0 = time.perf_counter()
    check_params(params)
    pdf_name(student_id)  # the id will also name the PDF: refuse it now, not later
    status = run_all(notebooks, build_dir, params, force=force, jobs=jobs)
    executed = [Path(build_dir) / "executed" / Path(n).name for n in notebooks]
    out = Path(out)
    try:
        print(build_html([e for e in executed if e.exists()], out, status=status,
                         student_id=student_id))
    except Exception:
        out.unlink(missing_ok=True)  # never leave a page from an earlier build in its place
        print(f"error: the page could not be built; {out} removed", file=sys.stderr)
        raise
    print(summary(status, time.perf_counter() - t0))
    return status

"""How the last ``make report`` ran its notebooks (``<build>/run.json``): written by
:func:`hw2lib.report.run.run_all`, read by the appendix (its cost table and its estimate for the
reference machine) and by ``make bench``."""
from __future__ import annotations

import json
import math
from pathlib import Path


def write_run_log(build_dir, notebooks: list[str], jobs: int, threads: int,
                  wall: float) -> Path:
    """Record the notebooks run before the appendices, how many at a time with how many torch
    threads each (None when one at a time: all of them), and their wall time in s."""
    path = Path(build_dir) / "run.json"
    path.write_text(json.dumps({"notebooks": notebooks, "jobs": jobs,
                                "threads": threads if jobs > 1 else None,
                                "wall_seconds": round(wall, 1)}, indent=2) + "\n")
    return path


def how_it_ran(timings_file) -> dict:
    """How :func:`run_all` last ran the notebooks before the appendices (``run.json`` beside
    ``timings.json``): {"jobs", "threads", "notebooks", "wall_seconds", "how": "2 at a time with
    1 torch thread each" or "one at a time"}; {} when it has not run."""
    path = Path(timings_file).with_name("run.json")
    if not path.exists():
        return {}
    run = json.loads(path.read_text())
    k = run.get("threads")
    run["how"] = (f"{run['jobs']} at a time with {k} torch thread{'s' * (k != 1)} each"
                  if run.get("jobs", 1) > 1 else "one at a time")
    return run


def before_appendix(timings_file) -> tuple[float, str]:
    """(wall time in s, what it covers) of the notebooks the last run executed before the
    appendices plus the appendices' last times (their own run is not over when they read this),
    when it executed all of them; (nan, what to run instead) when it reran only
    some (the others were up to date); (nan, "") without a run."""
    path = Path(timings_file)
    times = json.loads(path.read_text()) if path.exists() else {}
    run = how_it_ran(path)
    rest = [k for k in times if not k.startswith("appendix")]
    if not run or not rest:
        return math.nan, ""
    if set(rest) - set(run["notebooks"]):
        return math.nan, (f"This make report reran {len(run['notebooks'])} of the {len(rest)} "
                          f"notebooks before this appendix (the others were up to date); "
                          f"`make report FORCE=1` times them all.")
    appendix = sum(v for k, v in times.items() if k.startswith("appendix"))
    return run["wall_seconds"] + appendix, (
        f"The {len(rest)} notebooks make report ran before this appendix ({run['how']}, "
        f"{run['wall_seconds']:.1f} s) and this appendix's last run ({appendix:.1f} s)")

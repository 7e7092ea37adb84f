"""Notebook runs: papermill with the declared parameters, fingerprints for incremental builds,
the status of each section (ran, up to date, skipped for a missing input, failed), metrics."""
from __future__ import annotations

import ast
import json
import math
import os
import time
from pathlib import Path

from ..modes import MODES
from .runlog import write_run_log

# Cells the static report leaves out: parameters, and widgets that only live in a kernel.
INTERACTIVE_TAG = "interactive"
REPORT_SKIP_TAGS = ("parameters", "injected-parameters", INTERACTIVE_TAG)
SKIP_EXECUTION_TAG = "skip-execution"  # nbclient's default skip_cells_with_tag
# Parameters that name what a notebook writes (or reads back from this build), not its inputs:
# they do not enter the fingerprint.
UNTRACKED_PARAMS = {"fig_dir", "cache_dir", "noise_dir", "timings_json"}
# An exception a notebook raises to say "this section cannot run: an optional input is missing"
# (hw2lib.errors.MissingInput); the section is then skipped, not failed.
SKIP_EXCEPTIONS = {"MissingInput"}


def _strict(x):
    """NaN and infinities as null: metrics.json stays strict JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _strict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict(v) for v in x]
    if hasattr(x, "tolist"):  # numpy scalars and arrays
        return _strict(x.tolist())
    return x


def save_metrics(fig_dir, metrics: dict) -> Path:
    """Merge ``metrics`` into ``<fig_dir>/metrics.json`` (created if absent), strict JSON (NaN is
    written as null), and return its path."""
    path = Path(fig_dir) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(_strict(metrics))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(old, indent=2, sort_keys=True, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


def parse_param(text: str) -> tuple[str, object]:
    """``name=value`` -> (name, value); value as a Python literal when it parses, else a string."""
    if "=" not in text:
        raise ValueError(f"parameter {text!r} is not name=value")
    name, value = text.split("=", 1)
    try:
        return name.strip(), ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name.strip(), value


# Parameters that name the user's files: made absolute against the caller's folder (the
# notebooks run in notebooks/).
PATH_PARAMS = ("data_dir", "unet_module", "course_classifier", "ckpt", "clip_weights", "ti_out",
               "sd", "sd_config", "ti_ckpt")


def absolute_paths(params: dict) -> dict:
    """``params`` with the user's paths (:data:`PATH_PARAMS`) made absolute."""
    return {k: str(Path(v).expanduser().resolve()) if k in PATH_PARAMS and isinstance(v, str) and v
            else v for k, v in params.items()}


def check_params(params: dict) -> None:
    """The one place where the report's parameters are validated."""
    mode = params.get("mode", "embedded")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r} (make report MODE=...)")
    if mode == "course" and not params.get("data_dir"):
        raise ValueError("MODE=course needs DATA: the hw2_data folder (make report MODE=course "
                         "DATA=/path/to/hw2_data)")


# Notebooks of one problem whose names do not sort in the assignment's order: P3.1 before P3.2.
PART_ORDER = {"p3_zeroshot.ipynb": 0, "p3_personalize.ipynb": 1}


def notebook_order(paths) -> list[Path]:
    """The assignment's order: data, p1, p2, p3 (zero-shot, then personalization), then
    appendices (``appendix_*``) last."""
    return sorted((Path(p) for p in paths),
                  key=lambda p: (p.name.startswith("appendix"), p.name.split("_")[0],
                                 PART_ORDER.get(p.name, 0), p.name))


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
    lib = Path(__file__).parents[1]
    for f in sorted(lib.rglob("*")):
        if f.suffix in (".py", ".json", ".j2", ".css") and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(lib)).encode() + f.read_bytes())
    effective = {k: params.get(k, v) for k, v in declared_params(src).items()}
    h.update(json.dumps(effective, sort_keys=True, default=str).encode())
    for name, value in sorted(effective.items()):
        if name in UNTRACKED_PARAMS or not isinstance(value, str) or not value:
            continue
        path = Path(value) if Path(value).is_absolute() else src.parent / value
        if path.exists():
            h.update(json.dumps([name, _path_state(path)]).encode())
    return h.hexdigest()


def _error_of(executed: Path) -> tuple[str, str] | None:
    """(exception name, message) of the first error output of an executed notebook."""
    import nbformat
    if not executed.exists():
        return None
    for cell in nbformat.read(str(executed), as_version=4).cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                return o.get("ename", "Error"), o.get("evalue", "")
    return None


def _run_guarded(src, dst, params: dict, threads: int | None = None) -> tuple[float | None, str]:
    """:func:`run_notebook`, in :func:`run_all`'s process or one of its workers, whose kernels
    then get ``threads`` torch (OpenMP) threads. Returns (seconds, "") or (None, "Name: the
    error's last line"): the parent reports it, reading the executed notebook first."""
    if threads:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    try:
        return run_notebook(src, dst, params), ""
    except Exception as e:  # noqa: BLE001 - reported by the parent, which reads the notebook
        return None, f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[-1]}"


def run_all(notebooks, build_dir, params: dict, *, force: bool = False,
            jobs: int = 1) -> dict[str, dict]:
    """Run each notebook whose fingerprint changed since its last run (all with ``force``) and
    go on after one that fails. Returns and writes ``<build>/status.json``: ``{stem: {"status":
    "ran" | "up to date" | "skipped" | "failed", "seconds": ..., "error": ...}}``. A notebook
    that raises ``MissingInput`` is *skipped* (an optional input is absent; the page says
    which); any other error *fails* it. Only a notebook that ran to the end gets a stamp, so
    the next call runs the others again; each result is recorded as soon as it is known.

    ``jobs`` > 1 runs that many notebooks at a time, each kernel with ``cpu_count // jobs``
    torch threads, the longest (by ``timings.json``) first; the appendices (``appendix_*``,
    which read the others' times) run after the rest, alone. ``<build>/run.json`` records how
    the last run went (jobs, threads, the wall time of the notebooks before the appendices)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    import multiprocessing
    check_params(params)
    params = absolute_paths(params)
    build_dir = Path(build_dir)
    timings_path = build_dir / "timings.json"
    # entries of notebooks no longer in the report (renamed, removed) are dropped
    current = {Path(n).stem for n in notebooks}
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    timings = {k: v for k, v in timings.items() if k in current}
    status_path = build_dir / "status.json"
    status = json.loads(status_path.read_text()) if status_path.exists() else {}
    status = {k: v for k, v in status.items() if k in current}
    order = [p.stem for p in notebook_order(notebooks)]
    todo = []
    for src in notebook_order(notebooks):
        dst = build_dir / "executed" / src.name
        stamp = dst.with_suffix(".stamp")
        fp = fingerprint(src, params)
        if not force and dst.exists() and stamp.exists() and stamp.read_text() == fp:
            print(f"{src.name}: up to date (last run {timings.get(src.stem, float('nan')):.1f} s)",
                  flush=True)
            status[src.stem] = {**status.get(src.stem, {}), "status": "up to date"}
            continue
        stamp.unlink(missing_ok=True)
        todo.append((src, dst, stamp, fp))

    def record(item, seconds, error, t0):
        nonlocal timings
        src, dst, stamp, fp = item
        if seconds is None:
            ename, evalue = _error_of(dst) or (error.split(": ", 1) + [""])[:2]
            kind = "skipped" if ename in SKIP_EXCEPTIONS else "failed"
            status[src.stem] = {"status": kind, "error": f"{ename}: {evalue}",
                                "seconds": round(time.perf_counter() - t0, 1)}
            print(f"{src.name}: {kind}: {ename}: {evalue} (the whole output: {dst})", flush=True)
        else:
            stamp.write_text(fp)
            timings[src.stem] = round(seconds, 1)
            timings = {k: timings[k] for k in order if k in timings}  # the report's order
            timings_path.write_text(json.dumps(timings, indent=2) + "\n")
            status[src.stem] = {"status": "ran", "seconds": round(seconds, 1)}
            print(f"{src.name}: {seconds:.1f} s", flush=True)
        status_path.parent.mkdir(parents=True, exist_ok=True)
        status_path.write_text(json.dumps(status, indent=2) + "\n")

    def in_process(item):
        print(f"{item[0].name}: running ...", flush=True)
        t0 = time.perf_counter()
        record(item, *_run_guarded(item[0], item[1], params), t0)

    late = [i for i in todo if i[0].name.startswith("appendix")]
    first = [i for i in todo if i not in late]
    jobs = max(1, min(jobs, len(first)))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    t_first = time.perf_counter()
    if jobs == 1:
        for item in first:
            in_process(item)
    else:
        first.sort(key=lambda i: -timings.get(i[0].stem, math.inf))  # longest first
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            print(f"running {len(first)} notebooks, {jobs} at a time with {threads} torch "
                  f"thread(s) each, the longest first: "
                  f"{', '.join(i[0].name for i in first)} ...", flush=True)
            started = {pool.submit(_run_guarded, item[0], item[1], params, threads):
                       (item, time.perf_counter()) for item in first}
            for fut in as_completed(started):
                record(started[fut][0], *fut.result(), started[fut][1])
    if first:
        write_run_log(build_dir, [i[0].stem for i in first], jobs, threads,
                      time.perf_counter() - t_first)
    for item in late:
        in_process(item)
    names = {Path(n).stem for n in notebooks}
    return {k: v for k, v in status.items() if k in names}


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

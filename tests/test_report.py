import json
import math
from pathlib import Path

import nbformat
import pytest

from hw2lib.report import (build_html, check_params, off_machine_urls, parse_param, run_all,
                           run_notebook, save_metrics)
from hw2lib.report.mathml import MathError, markdown_to_mathml, tex_to_mathml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# The notebooks that draw noise or run networks; those that build data take data_seed instead.
COMPUTING = {"p1_ddpm.ipynb", "p2_ddim.ipynb", "p3_zeroshot.ipynb", "p3_personalize.ipynb"}
DATA_BUILDING = {"00_data.ipynb", "p3_zeroshot.ipynb"}
# notebooks whose results depend on the built data: the data notebooks, and P1 (its look
# statistics compare the samples with held-out real digits), which also draws noise
DATA_READING = DATA_BUILDING | {"p1_ddpm.ipynb"}


def test_notebooks_in_the_assignments_order():
    """P3.1 (zero-shot) before P3.2 (personalization), although their names sort the other way."""
    from hw2lib.report import notebook_order
    assert [p.name for p in notebook_order(NOTEBOOKS)] == [
        "00_data.ipynb", "p1_ddpm.ipynb", "p2_ddim.ipynb", "p3_zeroshot.ipynb",
        "p3_personalize.ipynb", "appendix_performance.ipynb"]


def test_parse_param():
    assert parse_param("seed=3") == ("seed", 3)
    assert parse_param("data_dir=") == ("data_dir", "")
    assert parse_param("mode=course") == ("mode", "course")
    assert parse_param("data_dir=/tmp/my data") == ("data_dir", "/tmp/my data")
    with pytest.raises(ValueError):
        parse_param("oops")


def test_save_metrics_merges_and_stays_strict_json(tmp_path):
    save_metrics(tmp_path, {"a": 1})
    save_metrics(tmp_path, {"b": [1, float("nan")], "c": {"d": float("inf")}})
    text = (tmp_path / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": 1, "b": [1, None], "c": {"d": None}}


def test_params_are_validated_once_at_the_entry():
    check_params({"mode": "embedded"})
    with pytest.raises(ValueError, match="mode must be one of"):
        check_params({"mode": "coarse"})
    with pytest.raises(ValueError, match="DATA"):
        check_params({"mode": "course", "data_dir": ""})


def test_user_paths_become_absolute(tmp_path, monkeypatch):
    from hw2lib.report.run import absolute_paths
    monkeypatch.chdir(tmp_path)
    out = absolute_paths({"data_dir": "my data", "mode": "course", "seed": 0, "ti_out": ""})
    assert out == {"data_dir": str(tmp_path / "my data"), "mode": "course", "seed": 0, "ti_out": ""}


def test_off_machine_detection():
    assert off_machine_urls('<img src="https://x.org/a.png">') == ['src="https://x.org']
    assert off_machine_urls("<script>import('https://cdn.x/m.js')</script>")
    assert off_machine_urls('<img src="data:image/png;base64,AA"><a name="x">') == []


def test_math_becomes_mathml():
    out = markdown_to_mathml(r"a $x_t$ b `$code$` c $$\hat\epsilon = (1 + w)\,\epsilon$$ d \$5")
    assert out.count("<math") == 2 and 'display="block"' in out and "`$code$`" in out
    assert "\\$5" in out and "$x_t$" not in out
    assert "\n" not in tex_to_mathml(r"\frac{a}{b}", display=True)
    with pytest.raises(MathError, match=r"\\arg"):
        tex_to_mathml(r"\arg\min_v f(v)")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebooks_committed_clean(nb):
    """Notebooks are committed without outputs, with a tagged parameters cell of literals; one
    name, one meaning: seed draws noise, data_seed builds data, device is honoured."""
    from hw2lib.report import declared_params
    book = nbformat.read(str(nb), as_version=4)
    assert all(not c.get("outputs") and not c.get("execution_count")
               for c in book.cells if c.cell_type == "code")
    params = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    assert "def " not in "".join(c.source for c in book.cells if c.cell_type == "code")
    assert "print(" not in "".join(c.source for c in book.cells if c.cell_type == "code")
    declared = declared_params(nb)
    if nb.name in COMPUTING:
        assert "device" in declared
    if nb.name in DATA_BUILDING:
        assert "data_seed" in declared and "seed" not in declared


def test_every_formula_of_the_notebooks_converts():
    for nb in NOTEBOOKS:
        for c in nbformat.read(str(nb), as_version=4).cells:
            if c.cell_type == "markdown":
                markdown_to_mathml(c.source)


def test_data_notebook_course_mode_and_html(hw2_data_pristine, tmp_path):
    """Pipeline smoke: 00_data runs under papermill on the fixture tree; the HTML is offline."""
    figs = tmp_path / "figs"
    seconds = run_notebook(ROOT / "notebooks" / "00_data.ipynb", tmp_path / "00.ipynb",
                           {"mode": "course", "data_dir": str(hw2_data_pristine),
                            "cache_dir": str(tmp_path / "cache"), "fig_dir": str(figs),
                            "unknown_param": 1})
    assert seconds > 0
    assert {p.name for p in figs.iterdir()} >= {"mnistm_samples.png", "svhn_samples.png",
                                                "faces.png", "metrics.json"}
    metrics = json.loads((figs / "metrics.json").read_text())
    assert metrics["mode"] == "course" and metrics["counts"]["SVHN, train"]["total"] == 130
    html = build_html([tmp_path / "00.ipynb"], tmp_path / "index.html").read_text()
    assert off_machine_urls(html) == [] and html.count("data:image/png;base64") >= 3
    assert 'class="mode-banner course"' in html and "<figcaption" in html


def _tiny_notebook(folder: Path, name: str = "p9_tiny.ipynb", extra: str = "",
                   heading: str = "9. Tiny") -> Path:
    """A notebook under the ``## heading`` with one formula, one captioned figure drawn from a
    'checkpoint' it names, and ``extra`` code appended as a last cell."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ckpt").mkdir(exist_ok=True)
    (folder / "ckpt" / "manifest.json").write_text(json.dumps({"steps_done": 7, "commit": "abc1234def"}))
    cells = [nbformat.v4.new_markdown_cell(f"## {heading}\n\nMath: $\\alpha_t$ and\n\n"
                                           "$$x_s = \\sqrt{\\bar\\alpha_s}\\,\\hat x_0$$\n\n### Part a"),
             nbformat.v4.new_code_cell('scale = 2  # a number\nckpt = "ckpt"  # a checkpoint\n'
                                       'seed = 0\nmode = "embedded"'),
             nbformat.v4.new_code_cell(
                 "import matplotlib.pyplot as plt\n"
                 "from hw2lib.report import show\n"
                 "fig = plt.figure(figsize=(1, 1))\n"
                 "plt.plot([0, scale])\n"
                 "show.figure(fig, 'fig.png', 'A line up to the scale.', scale=scale, seed=seed,"
                 " checkpoint=ckpt)")]
    if extra:
        cells.append(nbformat.v4.new_code_cell(extra))
    cells[1].metadata["tags"] = ["parameters"]
    path = folder / name
    book = nbformat.v4.new_notebook(cells=cells)
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(book, str(path))
    return path


def test_run_all_is_incremental(tmp_path, capsys):
    from hw2lib.report import fingerprint
    nb = _tiny_notebook(tmp_path / "notebooks")
    build = tmp_path / "build"
    status = run_all([nb], build, {"scale": 2, "not_declared": 1})
    assert status["p9_tiny"]["status"] == "ran" and (build / "executed" / nb.name).exists()
    first = fingerprint(nb, {"scale": 2})
    assert fingerprint(nb, {"scale": 2, "not_declared": 5}) == first  # undeclared: ignored
    assert fingerprint(nb, {"scale": 3}) != first  # a parameter changed
    capsys.readouterr()
    assert run_all([nb], build, {"scale": 2})["p9_tiny"]["status"] == "up to date"
    assert "up to date" in capsys.readouterr().out
    (nb.parent / "ckpt" / "model.bin").write_bytes(b"new weights")  # the checkpoint changed
    assert fingerprint(nb, {"scale": 2}) != first
    run_all([nb], build, {"scale": 2})
    assert "p9_tiny.ipynb: running" in capsys.readouterr().out
    assert json.loads((build / "timings.json").read_text())["p9_tiny"] > 0


def test_run_all_runs_two_at_a_time_with_a_thread_each_and_the_appendix_last(tmp_path):
    """jobs=2: two kernels overlap in time, each sees cpu_count // 2 torch threads, the appendix
    starts after both ended and has all threads; run.json says how they ran."""
    import os
    stamp = ("import json, os, time, torch\n"
             "t0 = time.time(); time.sleep(1.5)\n"
             "open(f'{name}.json', 'w').write(json.dumps([t0, time.time(), "
             "torch.get_num_threads()]))\n")
    folder = tmp_path / "notebooks"
    nbs = [_tiny_notebook(folder, f"{n}.ipynb", f"name = {n!r}\n" + stamp)
           for n in ("p8_a", "p9_b", "appendix_z")]
    build = tmp_path / "build"
    status = run_all(nbs, build, {"scale": 2}, jobs=2)
    assert {s["status"] for s in status.values()} == {"ran"}
    (a0, a1, ta), (b0, b1, tb), (z0, z1, tz) = (json.loads((folder / f"{n}.json").read_text())
                                                for n in ("p8_a", "p9_b", "appendix_z"))
    assert a0 < b1 and b0 < a1  # the two overlapped
    assert z0 > max(a1, b1)  # the appendix ran after both
    import torch
    assert ta == tb == max(1, os.cpu_count() // 2)  # each kernel its share of the cores
    assert tz == torch.get_num_threads()  # the appendix, alone, as a kernel started by hand
    run = json.loads((build / "run.json").read_text())
    assert run["jobs"] == 2 and set(run["notebooks"]) == {"p8_a", "p9_b"}
    assert run["wall_seconds"] < sum(json.loads((build / "timings.json").read_text())[n]
                                     for n in ("p8_a", "p9_b"))
    assert list(json.loads((build / "timings.json").read_text())) == ["p8_a", "p9_b", "appendix_z"]


def test_run_all_in_parallel_records_a_failure_and_goes_on(tmp_path):
    folder = tmp_path / "notebooks"
    bad = _tiny_notebook(folder, "p8_bad.ipynb", "raise RuntimeError('broken on purpose')")
    good = _tiny_notebook(folder, "p9_good.ipynb")
    status = run_all([bad, good], tmp_path / "build", {"scale": 2}, jobs=2)
    assert status["p8_bad"]["status"] == "failed"
    assert status["p8_bad"]["error"] == "RuntimeError: broken on purpose"
    assert status["p9_good"]["status"] == "ran"
    assert not (tmp_path / "build" / "executed" / "p8_bad.stamp").exists()


def test_a_renamed_notebook_leaves_no_ghost_time_or_status(tmp_path):
    """The appendix sums timings.json: a notebook renamed since the last build (p3_clip ->
    p3_zeroshot) must not stay in it, nor in status.json."""
    nb = _tiny_notebook(tmp_path / "notebooks")
    build = tmp_path / "build"
    build.mkdir()
    (build / "timings.json").write_text(json.dumps({"p3_clip": 12.9}))
    (build / "status.json").write_text(json.dumps({"p3_clip": {"status": "ran"}}))
    run_all([nb], build, {"scale": 2})
    assert set(json.loads((build / "timings.json").read_text())) == {"p9_tiny"}
    assert set(json.loads((build / "status.json").read_text())) == {"p9_tiny"}
    # kept in the report's order, whatever order the notebooks first ran in
    (build / "timings.json").write_text(json.dumps({"p9_tiny": 1.0, "00_data": 2.0}))
    data = nb.with_name("00_data.ipynb")
    data.write_bytes(nb.read_bytes())
    run_all([nb, data], build, {"scale": 2}, force=True)
    assert list(json.loads((build / "timings.json").read_text())) == ["00_data", "p9_tiny"]


def test_report_page_structure(tmp_path):
    nb = _tiny_notebook(tmp_path / "notebooks")
    run_all([nb], tmp_path / "build", {"scale": 2})
    out = build_html([tmp_path / "build" / "executed" / nb.name], tmp_path / "report" / "index.html",
                     commit="c0ffee")
    page = out.read_text()
    assert off_machine_urls(page) == [] and "<script src" not in page and "MathJax" not in page
    assert 'href="#p9_tiny-9-tiny"' in page and 'id="p9_tiny-9-tiny"' in page  # TOC -> section
    assert 'href="#p9_tiny-part-a"' in page
    assert page.count("<math") == 2 and 'display="block"' in page
    caption = page.split("<figcaption", 1)[1].split("</figcaption>", 1)[0]
    assert "Figure 1." in caption and "A line up to the scale." in caption
    assert "scale = 2" in caption and "seed = 0" in caption and "report commit c0ffee" in caption
    assert "ckpt (7 steps, trained at commit abc1234)" in caption
    assert "code-toggle" in page and 'class="jp-Notebook hide-code"' in page
    assert 'class="mode-banner embedded"' in page and "The stand-ins" in page
    assert "scale = 2" not in page.split("</head>")[1].split("jp-CodeCell")[0]  # params cell dropped


def test_sections_that_cannot_run_are_skipped_or_failed_and_the_rest_is_built(tmp_path, capsys):
    """A notebook raising MissingInput is skipped, any other error fails it; the next notebook
    still runs, and the page shows each section's heading with a notice saying why."""
    nbs = tmp_path / "notebooks"
    skip = _tiny_notebook(nbs, "p7_skip.ipynb", extra="from hw2lib.errors import MissingInput\n"
                          "raise MissingInput('give UNET_MODULE=/path/to/UNet.py')")
    fail = _tiny_notebook(nbs, "p8_fail.ipynb", extra="raise ValueError('a real bug')")
    good = _tiny_notebook(nbs, "p9_good.ipynb")
    status = run_all([skip, fail, good], tmp_path / "build", {"scale": 2})
    assert [status[k]["status"] for k in ("p7_skip", "p8_fail", "p9_good")] == [
        "skipped", "failed", "ran"]
    assert status["p7_skip"]["error"] == "MissingInput: give UNET_MODULE=/path/to/UNet.py"
    assert "p8_fail.ipynb: failed: ValueError: a real bug" in capsys.readouterr().out
    executed = [tmp_path / "build" / "executed" / p.name for p in (skip, fail, good)]
    page = build_html(executed, tmp_path / "index.html", status=status).read_text()
    assert page.count('class="section-notice"') == 2 and "This section was skipped" in page
    assert "give UNET_MODULE=/path/to/UNet.py" in page and "This section failed" in page
    assert "Traceback" not in page and page.count("<figcaption") == 1  # only p9 drew its figure
    assert page.count("<h2") == 3 and "An Exception was encountered" not in page  # headings kept
    # a failed notebook has no stamp: the next run tries it again
    again = run_all([skip, fail, good], tmp_path / "build", {"scale": 2})
    assert again["p9_good"]["status"] == "up to date" and again["p8_fail"]["status"] == "failed"


def test_cli_report_all_exit_codes(tmp_path, monkeypatch):
    from hw2lib.cli import main
    nbs = tmp_path / "notebooks"
    good = _tiny_notebook(nbs, "p9_good.ipynb")
    out = tmp_path / "report" / "index.html"
    args = ["report", "all", str(good), "--build", str(tmp_path / "build"), "--out", str(out),
            "-p", "scale=2"]
    assert main(args) == 0 and out.exists()
    assert main([*args, "-p", "mode=nope"]) == 2
    fail = _tiny_notebook(nbs, "p8_fail.ipynb", extra="raise ValueError('bug')")
    assert main([*args[:2], str(fail), *args[3:]]) == 1 and "This section failed" in out.read_text()


def test_table_escapes_and_formats():
    import pandas as pd
    from IPython.core.interactiveshell import InteractiveShell

    from hw2lib.report import show
    shell = InteractiveShell.instance()
    captured = []
    shell.display_pub.publish = lambda data, metadata=None, **kw: captured.append(data)
    df = pd.DataFrame({"concept": ["<new1>", "<new2>", "x-y"],
                       "score": [10.468385, float("nan"), -0.25]})
    show.table(df, formats={"score": "{:.1f}"}, caption="a <b> caption")
    html = captured[-1]["text/html"]
    assert "&lt;new1&gt;" in html and "<new1>" not in html and "10.5" in html
    assert "\u22120.2" in html and "x-y" in html  # a minus sign in numbers only
    assert "10.468" not in html and "nan" not in html.lower()
    assert "a &lt;b&gt; caption" in html
    assert show.pct(0.98, 100) == "98.0% ± 1.4 (n = 100)"
    assert show.pct_se(0.98, 100) == "98.0% ± 1.4" and show.pct_se(1.0, 100) == "100.0%"
    show.table(df, headers={"score": r"score $\frac{a}{b}$ <x>"})
    html = captured[-1]["text/html"]  # a header's formula typeset, its text escaped
    assert "<mfrac>" in html and "&lt;x&gt;" in html and "$" not in html
    assert show.pct(1.0, 1000) == ("100.0% (n = 1,000; no error: its rate is below 0.3% at 95% "
                                   "confidence)")


def test_makefile_passes_paths_with_spaces_whole():
    """DATA="/x/my data" reaches `report all` as one parameter (make -n prints the command)."""
    import shlex
    import subprocess
    out = subprocess.run(["make", "-n", "report", "MODE=course", "DATA=/x/my data",
                          "UNET_MODULE=/y/course code/UNet.py", "SEED=3", "DATA_SEED=5"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.replace("\\\n", " ").splitlines() if "hw2lib report all" in ln)
    args = shlex.split(line)
    params = [args[i + 1] for i, a in enumerate(args) if a == "-p"]
    assert {"mode=course", "data_dir=/x/my data", "unet_module=/y/course code/UNet.py", "seed=3",
            "data_seed=5"} <= set(params)


def test_seed_reruns_only_what_draws_noise_and_data_seed_only_what_builds_data():
    """make report SEED=1 reruns the noise notebooks and leaves the data splits and the CLIP
    accuracy (built from data_seed) as they were; DATA_SEED does the opposite."""
    from hw2lib.report import fingerprint
    base = {"mode": "embedded", "data_dir": "", "seed": 0, "data_seed": 0}
    noise = {"p1_ddpm.ipynb", "p2_ddim.ipynb", "p3_personalize.ipynb"}
    for nb in NOTEBOOKS:
        fp = fingerprint(nb, base)
        assert (fingerprint(nb, {**base, "seed": 1}) != fp) == (nb.name in noise), nb.name
        assert (fingerprint(nb, {**base, "data_seed": 1}) != fp) == (nb.name in DATA_READING), nb.name


def test_title_page_defines_the_terms_the_sections_use():
    """Every term of the glossary is on the page, in a table after the reference figures and
    before the contents, in either mode."""
    from hw2lib.report.page import TERMS, title_page
    for mode in ("embedded", "course"):
        page = title_page(mode, "c0ffee", [(2, "P1", "p1")], "HW2")
        assert page.index("reference figures") < page.index("Terms used below") < page.index(
            "Contents")
        for term, _ in TERMS:
            assert f"<td>{term.replace('<', '&lt;').replace('>', '&gt;')}</td>" in page


def test_time_before_the_appendix_and_on_the_reference_machine(tmp_path):
    """The appendix's estimate: the parallel phase's wall time when run.json says it ran so,
    else the sum of the other notebooks; carried to the reference by the UNet ratio."""
    from hw2lib import reference
    from hw2lib.report.runlog import before_appendix
    t = tmp_path / "timings.json"
    assert before_appendix(t)[1] == ""
    t.write_text(json.dumps({"00_data": 2.0, "p1": 50.0, "appendix_x": 9.0}))
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"notebooks": ["00_data", "p1"], "jobs": 1, "threads": None,
                               "wall_seconds": 52.3}))
    assert before_appendix(t) == (61.3, "The 2 notebooks make report ran before this appendix "
                                        "(one at a time, 52.3 s) and this appendix's last run "
                                        "(9.0 s)")
    run.write_text(json.dumps({"notebooks": ["p1"], "jobs": 1, "threads": None,
                               "wall_seconds": 50.1}))  # 00_data was up to date
    seconds, what = before_appendix(t)
    assert math.isnan(seconds) and "reran 1 of the 2 notebooks" in what and "FORCE=1" in what
    run.write_text(json.dumps(
        {"notebooks": ["00_data", "p1"], "jobs": 2, "threads": 1, "wall_seconds": 40.0}))
    seconds, what = before_appendix(t)
    assert seconds == 49.0 and "(2 at a time with 1 torch thread each, 40.0 s)" in what
    ref_ms = 1000 * reference.AVX2["seconds"] / reference.AVX2["evaluations"]  # 4.55 ms
    ratio, there = reference.on_reference(40.0, ref_ms / 2)  # this machine twice as fast
    assert ratio == pytest.approx(2.0) and there == pytest.approx(80.0)
    assert ("about 80 s there, within the project's budget of 3 minutes"
            in reference.text(40.0, ref_ms / 2, what))
    assert ("about 400 s there, over the project's budget of 3 minutes"
            in reference.text(40.0, ref_ms / 10, what))
    # which kernels ran: the reference's say the ratio is only the CPUs' other differences
    assert "ISA=avx2" not in reference.text(40.0, ref_ms / 2, what)
    assert "the reference's (`make report ISA=avx2`)" in reference.text(40.0, ref_ms / 2, what,
                                                                       kernels="AVX2")
    assert "for a closer estimate" in reference.text(40.0, ref_ms / 2, what, kernels="AVX512")

"""``python -m hw2lib ...``: the commands the Makefile and the course's scripts call.

Each command group lives in a ``register_<group>`` function that adds its sub-parsers; the
command itself is a small function taking the parsed arguments and returning an exit code.

Exit codes: 0 a complete, correct result; 1 ``data check`` found a broken part (or an
unexpected error, with its traceback); 2 a user or input error (one message naming the file
and what to do; ``--debug`` shows the traceback); 130/143 training stopped by SIGINT/SIGTERM
(state saved, nothing exported).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _command() -> str:
    """The command line as a user would retype it (for manifests)."""
    return "python -m hw2lib " + " ".join(sys.argv[1:])


# ------------------------------------------------------------------------------------ data
def cmd_data_check(args) -> int:
    from .data import check_tree
    root = Path(args.data)
    if not root.is_dir():
        print(f"error: {root} is not a folder (expected the hw2_data folder)", file=sys.stderr)
        return 2
    reports = check_tree(root, full=args.full)
    for r in reports:
        print(f"[{r.status:>6}] {r.name}: {r.summary}")
        for p in r.problems:
            print(f"         - {p}")
    broken = [r for r in reports if r.status == "broken"]
    if all(r.status == "absent" for r in reports):
        print(f"error: no part of hw2_data found under {root}", file=sys.stderr)
        return 1
    print(f"{len(broken)} broken part(s), {sum(len(r.problems) for r in broken)} problem(s)")
    return 1 if broken else 0


def cmd_data_preview(args) -> int:
    import matplotlib
    matplotlib.use("Agg")
    from . import viz
    from .data import face_images, load_digit_sets
    out = Path(args.out)
    for name, ds in load_digit_sets(args.mode, data_dir=args.data, seed=args.seed,
                                    cache_dir=args.cache_dir).items():
        grid = viz.class_rows(ds.x_train, ds.y_train, per_class=10)
        fig = viz.grid_figure(grid, row_labels=range(10), title=f"{name} (train)")
        print(viz.save_figure(fig, out / f"{name}.png"))
    faces = face_images(args.mode, data_dir=args.data)[:40]
    fig = viz.grid_figure(faces.reshape(4, 10, *faces.shape[1:]), title="faces")
    print(viz.save_figure(fig, out / "faces.png"))
    return 0


def register_data(sub) -> None:
    p = sub.add_parser("data", help="check the course data, preview the embedded data")
    s = p.add_subparsers(dest="action", required=True)
    c = s.add_parser("check", help="validate a hw2_data tree; exit 1 when a part is broken")
    c.add_argument("--data", required=True, help="the hw2_data folder")
    c.add_argument("--full", action="store_true", help="open every image (default: 200 per set)")
    c.set_defaults(func=cmd_data_check)
    v = s.add_parser("preview", help="write sample grids of the data as PNG")
    v.add_argument("--mode", choices=("embedded", "course"), default="embedded")
    v.add_argument("--data", default=None, help="the hw2_data folder (course mode)")
    v.add_argument("--out", required=True)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--cache-dir", default="data_cache")
    v.set_defaults(func=cmd_data_preview)


# ---------------------------------------------------------------------------------- report
def cmd_report_run(args) -> int:
    from .report import parse_param, run_notebook
    params = dict(parse_param(p) for p in args.param)
    seconds = run_notebook(args.notebook, args.out, params)
    print(f"{Path(args.notebook).name}: {seconds:.1f} s")
    return 0


def cmd_report_build(args) -> int:
    from .report import build_html
    print(build_html(args.notebooks, args.out, student_id=args.student_id))
    return 0


def cmd_report_all(args) -> int:
    """Run the notebooks that changed, then build the page whatever happened: a skipped or
    failed section shows on the page as a notice. Exit 1 only when a section failed."""
    import time
    from .report import build_html, check_params, parse_param, run_all
    t0 = time.perf_counter()
    from .report.pdf import pdf_name
    params = dict(parse_param(p) for p in args.param)
    try:
        check_params(params)
        pdf_name(args.student_id)  # the id will also name the PDF: refuse it now, not later
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    status = run_all(args.notebooks, args.build, params, force=args.force)
    executed = [Path(args.build) / "executed" / Path(n).name for n in args.notebooks]
    out = Path(args.out)
    try:
        print(build_html([e for e in executed if e.exists()], out, status=status,
                         student_id=args.student_id))
    except Exception:
        out.unlink(missing_ok=True)  # never leave a page from an earlier build in its place
        print(f"error: the page could not be built; {out} removed", file=sys.stderr)
        raise
    counts = {k: [n for n, s in status.items() if s["status"] == k]
              for k in ("ran", "up to date", "skipped", "failed")}
    print("report: " + ", ".join(f"{len(v)} {k}" + (f" ({', '.join(v)})" if v and k in
                                                     ("skipped", "failed") else "")
                                 for k, v in counts.items() if v)
          + f"; {time.perf_counter() - t0:.1f} s")
    return 1 if counts["failed"] else 0


def cmd_report_check(args) -> int:
    from .report import check
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


def cmd_report_pdf(args) -> int:
    """Print the built page to the PDF the course collects; then, when poppler-utils is there,
    say where each section starts and write every page as a PNG for a person to look at."""
    import shutil
    import time

    from .errors import InputError, MissingInputError
    from .report import pdf
    page = Path(args.page)
    if not page.exists():
        raise MissingInputError(f"{page} not found: run make report first")
    try:
        out = Path(args.out or page.with_name(pdf.pdf_name(args.student_id)))
    except ValueError as e:
        raise InputError(str(e)) from None
    if args.student_id and f"Student ID: <b>{args.student_id}</b>" not in page.read_text():
        raise InputError(f"{page} does not show student id {args.student_id} on its title page: "
                         "build it with --student-id (make pdf STUDENT_ID=... does)")
    t0 = time.perf_counter()
    pdf.print_pdf(page, out)
    print(f"{out}: {time.perf_counter() - t0:.1f} s")
    if not (shutil.which("pdftotext") and shutil.which("pdftoppm")):
        print("(install poppler-utils to check the pages and see them as PNGs)")
        return 0
    seen = pdf.read_back(out, page, args.pngs)
    print(f"{seen['pages']} pages; sections start on pages "
          + ", ".join(f"{p or '?'} ({h})" for h, p in seen["starts"])
          + (f"; every page as a PNG in {args.pngs}/" if args.pngs else ""))
    bad = [f"section does not start a page: {h}" for h, p in seen["starts"] if p is None]
    bad += [f"blank page: {name}" for name in seen["blank"]]
    for line in bad:
        print("  -", line)
    return 1 if bad else 0


def register_report(sub) -> None:
    p = sub.add_parser("report", help="run notebooks and assemble the HTML report")
    s = p.add_subparsers(dest="action", required=True)
    r = s.add_parser("run", help="execute one notebook with papermill")
    r.add_argument("notebook")
    r.add_argument("out", help="where the executed notebook goes")
    r.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a parameter; passed only if the notebook declares it")
    r.set_defaults(func=cmd_report_run)
    b = s.add_parser("build", help="assemble executed notebooks into one offline HTML page")
    b.add_argument("notebooks", nargs="+")
    b.add_argument("--out", required=True)
    b.add_argument("--student-id", default="", help="put on the title page")
    b.set_defaults(func=cmd_report_build)
    a = s.add_parser("all", help="run the notebooks whose inputs changed, then build the page")
    a.add_argument("notebooks", nargs="+")
    a.add_argument("--build", default="build", help="executed notebooks, stamps, timings.json")
    a.add_argument("--out", default="report/index.html")
    a.add_argument("--force", action="store_true", help="run every notebook")
    a.add_argument("--student-id", default="", help="put on the title page")
    a.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    a.set_defaults(func=cmd_report_all)
    c = s.add_parser("check", help="read the page in headless chromium as a reader would")
    c.add_argument("page", nargs="?", default="report/index.html")
    c.add_argument("--figures", default="figures", help="where the notebooks wrote metrics.json")
    c.add_argument("--screens", default="build/screens",
                   help="one screenshot per section goes here ('' for none)")
    c.set_defaults(func=cmd_report_check)
    d = s.add_parser("pdf", help="print the built page to a PDF with headless chromium")
    d.add_argument("page", nargs="?", default="report/index.html")
    d.add_argument("--out", help="default: next to the page, hw2_<id>.pdf or hw2_report.pdf")
    d.add_argument("--student-id", default="", help="must be on the page's title page already")
    d.add_argument("--pngs", default="build/pdf_pages",
                   help="every page as a PNG goes here ('' for none; needs poppler-utils)")
    d.set_defaults(func=cmd_report_pdf)


# ----------------------------------------------------------------------------------- train
def _train_config(args):
    from .train import TrainConfig
    return TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                       precision=args.precision, max_minutes=args.max_minutes,
                       save_every=args.save_every)


def _save_every_arg(p, default: int = 250) -> None:
    p.add_argument("--save-every", type=int, default=default,
                   help="write the resumable training state every this many steps")


def _export_arg(p) -> None:
    p.add_argument("--export", choices=("ema", "model"), default="ema",
                   help="which weights to export: the EMA (default) or the raw model")


def cmd_train_p1(args) -> int:
    from . import p1
    from .data import load_digit_sets
    sets = load_digit_sets(args.mode, data_dir=args.data, seed=args.data_seed,
                           cache_dir=args.cache_dir)
    out = p1.train(sets, args.out, _train_config(args), command=_command(), export=args.export)
    print(f"P1 DDPM written to {out}")
    return 0


def register_train(sub) -> None:
    p = sub.add_parser("train", help="train a model (resumable: rerun the same command)")
    s = p.add_subparsers(dest="model", required=True)
    t = s.add_parser("p1", help="the class-conditional digit DDPM")
    t.add_argument("--out", default="checkpoints/p1_ddpm")
    t.add_argument("--steps", type=int, default=5235,
                   help="the committed checkpoint's length: ~80 min on 2 CPU cores alone")
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=1e-3,
                   help="1e-3: 92%% classifier accuracy (w=2) after 5,235 steps; "
                        "2e-4: 24%% after 3,282")
    t.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="auto: bf16 autocast where a matmul benchmark (cached per machine) says "
                        "it pays, else fp32")
    t.add_argument("--max-minutes", type=float, default=None,
                   help="stop (and export) after this wall time")
    _data_args(t)
    _export_arg(t)
    _save_every_arg(t)
    t.set_defaults(func=cmd_train_p1)
    f = s.add_parser("faces", help="the unconditional face DDPM of P2 (embedded mode)")
    f.add_argument("--out", default="checkpoints/p2_faces")
    f.add_argument("--steps", type=int, default=2000)
    f.add_argument("--batch-size", type=int, default=32)
    f.add_argument("--lr", type=float, default=3e-4)
    f.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    f.add_argument("--max-minutes", type=float, default=None)
    f.add_argument("--seed", type=int, default=0)
    _export_arg(f)
    _save_every_arg(f)
    f.set_defaults(func=cmd_train_faces)
    c = s.add_parser("classifier", help="the digit classifier that scores P1 samples")
    c.add_argument("--out", default="checkpoints/digit_classifier")
    c.add_argument("--epochs", type=int, default=15)
    _data_args(c)
    _save_every_arg(c)
    c.set_defaults(func=cmd_train_classifier)
    k = s.add_parser("clip", help="the embedded CLIP of P3 (ClipLoss on captioned digits)")
    k.add_argument("--out", default="checkpoints/p3_clip")
    k.add_argument("--steps", type=int, default=6000)
    k.add_argument("--batch-size", type=int, default=128)
    k.add_argument("--lr", type=float, default=1e-3)
    k.add_argument("--max-minutes", type=float, default=None)
    _data_args(k)
    _save_every_arg(k)
    k.set_defaults(func=cmd_train_clip)
    e = s.add_parser("t2i", help="the embedded text-to-image scene model of P3b")
    e.add_argument("--out", default="checkpoints/p3_t2i")
    e.add_argument("--clip", default="checkpoints/p3_clip", help="the embedded CLIP (text tower)")
    e.add_argument("--steps", type=int, default=3000)
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--lr", type=float, default=1e-3)
    e.add_argument("--max-minutes", type=float, default=None)
    _data_args(e)
    _save_every_arg(e)
    e.set_defaults(func=cmd_train_t2i)
    v = s.add_parser("ti", help="textual inversion of the two new concepts on the embedded "
                                "scene model (course SD: python -m hw2lib ti train)")
    v.add_argument("--out", default="checkpoints/p3_ti")
    v.add_argument("--t2i", default="checkpoints/p3_t2i", help="the embedded scene model")
    v.add_argument("--steps", type=int, default=300)
    v.add_argument("--batch-size", type=int, default=64)
    v.add_argument("--lr", type=float, default=2e-3)
    v.add_argument("--snr-gamma", type=float, default=0.0,
                   help="Min-SNR loss weighting with this gamma (0: the plain eps loss)")
    v.add_argument("--guidance", type=float, default=0.0,
                   help="fit the guided prediction with this w (0: the conditional one)")
    v.add_argument("--t-min", type=int, default=0,
                   help="draw training timesteps from [t_min, 1000) only (0: all)")
    v.add_argument("--relative", action=argparse.BooleanOptionalAction, default=True,
                   help="divide each sample's loss by the unconditional prediction's "
                        "(default; --no-relative: the plain eps loss)")
    v.add_argument("--num-vectors", type=int, default=4,
                   help="embedding vectors per token (diffusers' multi-vector format)")
    v.add_argument("--max-minutes", type=float, default=None)
    _data_args(v)
    _save_every_arg(v, 100)
    v.set_defaults(func=cmd_train_ti)


def cmd_train_classifier(args) -> int:
    from .classifier import save_classifier, train_classifier
    from .data import load_digit_sets
    sets = load_digit_sets(args.mode, data_dir=args.data, seed=args.data_seed,
                           cache_dir=args.cache_dir)
    model, info = train_classifier(sets, epochs=args.epochs, seed=args.seed,
                                   state_dir=Path(args.out) / "state", save_every=args.save_every)
    info.update(command=_command(), data_fingerprints={n: d.fingerprint for n, d in sets.items()})
    save_classifier(model, args.out, info)
    print(f"classifier written to {args.out}: test accuracy {info['test_accuracy']}")
    return 0


def cmd_train_faces(args) -> int:
    from . import p2
    out = p2.train_face_model(args.out, _train_config(args), command=_command(),
                              export=args.export)
    print(f"face DDPM written to {out}")
    return 0


def _data_args(p) -> None:
    p.add_argument("--mode", choices=("embedded", "course"), default="embedded")
    p.add_argument("--data", default=None, help="the hw2_data folder (course mode)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-seed", type=int, default=0, help="seed of the embedded data builders")
    p.add_argument("--cache-dir", default="data_cache")


# -------------------------------------------------------------------------------------- p1
def cmd_p1_sample(args) -> int:
    import numpy as np
    from . import p1
    from .files import check_empty_or_overwrite
    from .precision import resolve
    unet, schedule, cfg = p1.load(args.ckpt)
    print(resolve(args.precision).describe())
    for name in cfg["sets"]:  # refuse before sampling, not after the first set
        check_empty_or_overwrite(Path(args.out) / name, overwrite=args.overwrite)
    digits = np.repeat(np.arange(10), args.n_per_digit)
    for k, name in enumerate(cfg["sets"]):
        images, _ = p1.sample(unet, schedule, name, digits, sampler=args.sampler, steps=args.steps,
                              w=args.w, seed=args.seed + k, progress=True,
                              precision=args.precision)
        print(p1.write_grading_folder(args.out, name, images, digits, overwrite=args.overwrite))
    return 0


def cmd_p1_score(args) -> int:
    from . import p1
    from .classifier import accuracy
    folders = p1.grading_folders(args.dir)
    scorers = p1.scorers(args.classifier, args.course_classifier)
    for scorer, model in scorers.items():
        accs = {}
        for d in folders:
            x, y = p1.read_grading_folder(d)
            accs[d.name] = accuracy(model, x, y)
            print(f"{scorer:12s} {d.name:8s} {accs[d.name]:.4f} ({len(y)} images)")
        print(f"{scorer:12s} average  {sum(accs.values()) / len(accs):.4f}")
    if args.look:  # KID and mean-colour distance against the held-out split (hw2lib.look)
        from .data import load_digit_sets
        from .look import look_stats
        sets = load_digit_sets(args.mode, data_dir=args.data, seed=args.data_seed,
                               cache_dir=args.cache_dir)
        for d in folders:
            x, _ = p1.read_grading_folder(d)
            r = look_stats(scorers["project CNN"], x, sets[d.name].x_test, sets[d.name].x_train)
            print(f"look         {d.name:8s} KID {r['KID']:.4f} (sd {r['KID sd']:.4f}; train vs "
                  f"test {r['KID floor']:.4f})  mean-colour TV {r['colour TV']:.3f} (train vs "
                  f"test {r['colour TV floor']:.3f})")
    return 0


def register_p1(sub) -> None:
    p = sub.add_parser("p1", help="problem 1: sample digits, score them")
    s = p.add_subparsers(dest="action", required=True)
    a = s.add_parser("sample", help="write <out>/<set>/{digit}_{NNN}.png as the course grades them")
    a.add_argument("--out", required=True)
    a.add_argument("--ckpt", default="checkpoints/p1_ddpm")
    a.add_argument("--sampler", choices=("ddpm", "ddim", "dpmpp"), default="ddim",
                   help="dpmpp: DPM-Solver++(2M), e.g. --steps 15")
    a.add_argument("--steps", type=int, default=50,
                   help="DDIM or DPM-Solver++ steps (DDPM always uses T)")
    a.add_argument("--w", type=float, default=4.0, help="guidance weight w (eps = (1+w)c - w u)")
    a.add_argument("--n-per-digit", type=int, default=50)
    a.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="auto: bf16 autocast where a matmul benchmark (cached per machine) says "
                        "it pays, else fp32")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--overwrite", action="store_true",
                   help="replace set folders that already hold files (default: refuse)")
    a.set_defaults(func=cmd_p1_sample)
    c = s.add_parser("score", help="accuracy of a classifier on a grading folder")
    c.add_argument("dir", help="the folder holding mnistm/ and svhn/ (other folders are ignored)")
    c.add_argument("--classifier", default="checkpoints/digit_classifier")
    c.add_argument("--course-classifier", default=None, help="the course's Classifier.pth")
    c.add_argument("--look", action="store_true",
                   help="also KID on the project CNN's features and the mean-colour distance "
                        "against the held-out split of --mode/--data (train vs test: the floor)")
    _data_args(c)
    c.set_defaults(func=cmd_p1_score)


# -------------------------------------------------------------------------------------- p2
def _face_model(args):
    from . import p2
    if args.unet_module:
        return p2.load_course_unet(args.unet_module, args.unet_ckpt or "UNet.pt")
    return p2.load_face_model(args.ckpt)[0]


def cmd_p2_sample(args) -> int:
    from . import p2
    from .files import refuse_overlap, save_image_atomic
    noise_dir, out = Path(args.noise_dir), Path(args.out)
    refuse_overlap(out, {"the noise folder": noise_dir,
                         "the ground-truth folder": noise_dir.parent / "GT"})
    noises, names = p2.load_noises(noise_dir)
    eps_model = _face_model(args)
    for i in range(0, len(noises), args.batch_size):
        imgs = p2.sample_uint8(eps_model, noises[i:i + args.batch_size], eta=args.eta,
                               convention=args.convention, seed=args.seed,
                               image_ids=range(i, min(i + args.batch_size, len(noises))))
        for img, n in zip(imgs, names[i:i + args.batch_size]):
            print(save_image_atomic(img, out / f"{n}.png"))
    return 0


def cmd_p2_mse(args) -> int:
    from . import p2
    names, mse = p2.mse_folders(args.pred, args.gt)
    for n, m in zip(names, mse):
        print(f"{n}.png: {m:.4f}")
    print(f"mean: {mse.mean():.4f}")
    return 0


def register_p2(sub) -> None:
    p = sub.add_parser("p2", help="problem 2: DDIM from fixed noises, MSE against ground truth")
    s = p.add_subparsers(dest="action", required=True)
    a = s.add_parser("sample", help="DDIM-50 (981..1) from noise_dir/*.pt to out/<name>.png")
    a.add_argument("--noise-dir", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--unet-module", default=None, help="the course's UNet.py (course mode)")
    a.add_argument("--unet-ckpt", default=None, help="the course's UNet.pt (course mode)")
    a.add_argument("--ckpt", default="checkpoints/p2_faces", help="embedded face model folder")
    a.add_argument("--eta", type=float, default=0.0)
    a.add_argument("--convention", choices=("t", "t-1"), default="t",
                   help="alpha_bar[t] then alpha_bar[0] (t), or alpha_bar[t-1] then 1 (t-1)")
    a.add_argument("--seed", type=int, default=0,
                   help="seed of the eta > 0 noise (per image: independent of --batch-size)")
    a.add_argument("--batch-size", type=int, default=10)
    a.set_defaults(func=cmd_p2_sample)
    m = s.add_parser("mse", help="per-image and mean MSE (0-255) of pred/*.png against gt/*.png")
    m.add_argument("--pred", required=True)
    m.add_argument("--gt", required=True)
    m.set_defaults(func=cmd_p2_mse)


# -------------------------------------------------------------------------------------- p3
def cmd_p3_zeroshot(args) -> int:
    from . import p3
    clip = p3.load_model(args.mode, pretrained=args.pretrained, ckpt=args.ckpt,
                         model_name=args.model, quick_gelu=not args.no_quick_gelu)
    data = p3.zeroshot_set(args.mode, data_dir=args.data, seed=args.data_seed,
                           cache_dir=args.cache_dir)
    kinds = ("single", "ensemble") if args.templates == "both" else (args.templates,)
    results = p3.evaluate(clip, data, kinds)
    print(p3.format_accuracies(results))
    if args.out:
        print(p3.write_predictions(args.out, data, results[kinds[-1]]))
    return 0


def cmd_train_clip(args) -> int:
    from .clip.embedded import train
    from .data import load_digit_sets
    from .train import TrainConfig
    sets = load_digit_sets("embedded", seed=args.data_seed, cache_dir=args.cache_dir)
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      warmup=200, channels_last=False, max_minutes=args.max_minutes,
                      save_every=args.save_every)
    print(f"embedded CLIP written to {train(sets, args.out, cfg, command=_command())}")
    return 0


def cmd_train_t2i(args) -> int:
    from .data import load_digit_sets
    from .personalize.embedded import train
    from .train import TrainConfig
    sets = load_digit_sets("embedded", seed=args.data_seed, cache_dir=args.cache_dir)
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      p_uncond=0.1, max_minutes=args.max_minutes, save_every=args.save_every)
    print(f"embedded text-to-image model written to "
          f"{train(sets, args.clip, args.out, cfg, command=_command())}")
    return 0


def cmd_train_ti(args) -> int:
    from .data import load_digit_sets
    from .personalize.embedded import train_concepts
    from .train import TrainConfig
    sets = load_digit_sets("embedded", seed=args.data_seed, cache_dir=args.cache_dir)
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      warmup=20, ema_decay=0.0, p_uncond=0.0, channels_last=False,
                      save_every=args.save_every, max_minutes=args.max_minutes)
    out = train_concepts(args.t2i, sets, args.out, cfg, command=_command(),
                         snr_gamma=args.snr_gamma or None, guidance=args.guidance,
                         t_min=args.t_min, num_vectors=args.num_vectors,
                         relative=args.relative)
    print(f"learned concepts written to {out}")
    return 0


def register_p3(sub) -> None:
    p = sub.add_parser("p3", help="problem 3: CLIP zero-shot")
    s = p.add_subparsers(dest="action", required=True)
    z = s.add_parser("zeroshot", help="zero-shot accuracy (course: ViT-B/32 from a local file)")
    _data_args(z)
    z.add_argument("--pretrained", default=None, help="course mode: the CLIP weights file")
    z.add_argument("--model", default="ViT-B-32", help="course mode: the open_clip model name")
    z.add_argument("--no-quick-gelu", action="store_true",
                   help="the weights were not trained with QuickGELU (OpenAI's were)")
    z.add_argument("--ckpt", default="checkpoints/p3_clip", help="embedded CLIP folder")
    z.add_argument("--templates", choices=("single", "ensemble", "both"), default="both")
    z.add_argument("--out", default=None, help="write predictions to this CSV")
    z.set_defaults(func=cmd_p3_zeroshot)


# ----------------------------------------------------------------------------- checkpoints
def cmd_checkpoints(args) -> int:
    """Every embedded-mode model from scratch, in dependency order (each step resumable)."""
    parser = build_parser()
    common = ["--seed", str(args.seed)]
    jobs = [["train", "classifier", "--out", f"{args.out}/digit_classifier", *common],
            ["train", "p1", "--out", f"{args.out}/p1_ddpm", *common],  # 5,235 steps, lr 1e-3
            ["train", "faces", "--out", f"{args.out}/p2_faces", *common],
            ["train", "clip", "--out", f"{args.out}/p3_clip", *common],
            ["train", "t2i", "--out", f"{args.out}/p3_t2i", "--clip", f"{args.out}/p3_clip",
             *common],
            ["train", "ti", "--out", f"{args.out}/p3_ti", "--t2i", f"{args.out}/p3_t2i", *common]]
    for argv in jobs:
        print("==>", "python -m hw2lib", " ".join(argv), flush=True)
        sub = parser.parse_args(argv)
        if sub.func(sub) != 0:
            return 1
    return 0


def register_checkpoints(sub) -> None:
    p = sub.add_parser("checkpoints", help="train every embedded-mode model from scratch")
    p.add_argument("--out", default="checkpoints")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_checkpoints)


def cmd_bench(args) -> int:
    from . import bench
    rows = bench.run(args.profile, p1_ckpt=args.p1_ckpt, classifier_ckpt=args.classifier,
                     timings=args.timings, out=args.out, sections=args.section or None)
    print(bench.to_markdown(rows))
    print(f"written to {args.out}/bench.json and bench.md")
    return 0


def register_bench(sub) -> None:
    p = sub.add_parser("bench", help="sampler, training and report cost (one table)")
    p.add_argument("--profile", choices=("tiny", "quick", "full"), default="quick",
                   help="tiny: seconds (tests); quick: ~10 min; full: adds DDPM-1000 (~1 h)")
    p.add_argument("--section", action="append",
                   choices=("sampler", "flops", "quality", "training", "report"),
                   help="run only these sections (repeatable)")
    p.add_argument("--p1-ckpt", default="checkpoints/p1_ddpm")
    p.add_argument("--classifier", default="checkpoints/digit_classifier")
    p.add_argument("--timings", default="build/timings.json", help="written by make report")
    p.add_argument("--out", default="figures/bench")
    p.set_defaults(func=cmd_bench)


def register_ti(sub) -> None:
    from .personalize.cli import register
    register(sub)


REGISTRY = [register_data, register_report, register_train, register_p1, register_p2, register_p3,
            register_ti,
            register_checkpoints, register_bench]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hw2lib", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of a user or input error")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in REGISTRY:
        register(sub)
    return parser


def main(argv=None) -> int:
    """Run one command. A :class:`~hw2lib.errors.UserError` (or a missing file) becomes one
    ``error: ...`` message on stderr and its exit code, without a traceback unless ``--debug``."""
    from .errors import UserError
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UserError, FileNotFoundError) as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 2)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("error: interrupted", file=sys.stderr)
        return 130

"""``p1 sample|score``, ``p2 sample|mse``, ``p3 zeroshot``: the course's commands."""
from __future__ import annotations

from ..p1.ablation import ABLATION_FILE
from ..p1.model import SAMPLERS
from .common import data_args, device_arg, group, precision_arg


def cmd_p1_sample(args) -> int:
    from .. import p1
    for folder in p1.sample_to_folders(args.ckpt, args.out, n_per_digit=args.n_per_digit,
                                       sampler=args.sampler, steps=args.steps, w=args.w,
                                       seed=args.seed, overwrite=args.overwrite,
                                       device=args.device, precision=args.precision):
        print(folder)
    return 0


def cmd_p1_score(args) -> int:
    from .. import p1
    scorers = p1.scorers(args.classifier, args.course_classifier)
    for scorer, name, acc, n in p1.score_folders(args.dir, scorers):
        print(f"{scorer:12s} {name:8s} {acc:.4f}" + ("" if name == "average" else f" ({n} images)"))
    if args.look:  # KID and mean-colour distance against the held-out split (hw2lib.look)
        from ..data import load_digit_sets
        sets = load_digit_sets(args.mode, data_dir=args.data, seed=args.data_seed,
                               cache_dir=args.cache_dir)
        for name, r in p1.look_folders(args.dir, scorers["project CNN"], sets).items():
            print(f"look         {name:8s} KID {r['KID']:.4f} (sd {r['KID sd']:.4f}; train vs "
                  f"test {r['KID floor']:.4f})  mean-colour TV {r['colour TV']:.3f} (train vs "
                  f"test {r['colour TV floor']:.3f})")
    return 0


def _scorer(args, set_names=None, seed: int = 0):
    """(the project CNN, its look references on ``set_names`` (default: every set; subsets drawn
    with ``seed``), the command line) of ``p1 curve``, ``p1 sweep`` and ``p1 ablation``."""
    import sys

    from .. import p1
    from ..classifier import load_classifier
    from ..data import load_digit_sets
    model = load_classifier(args.classifier)
    sets = load_digit_sets(args.mode, data_dir=args.data, seed=args.data_seed,
                           cache_dir=args.cache_dir)
    refs = p1.look_references({n: sets[n] for n in (set_names or sets)}, model, seed=seed,
                              cache_dir=args.cache_dir)
    return model, refs, "python -m hw2lib " + " ".join(sys.argv[1:])


def cmd_p1_curve(args) -> int:
    from .. import p1
    from ..errors import InputError
    from ..p1 import curve
    settings = curve.SETTINGS
    if args.settings:
        settings = [(s.rsplit("-", 1)[0], int(s.rsplit("-", 1)[1]))
                    for s in args.settings.split(",")]
    unet, schedule, cfg = p1.load(args.ckpt, device=args.device)
    model, refs, command = _scorer(args, cfg["sets"])
    old = curve.read(args.ckpt, classifier=args.classifier) if args.add else None
    if old is not None and (old[1]["w"], old[1]["seed"]) != (args.w, args.seed):
        raise InputError(f"--add: the curve was measured at w = {old[1]['w']:g}, seed "
                         f"{old[1]['seed']}; give the same --w and --seed")
    table = curve.measure(unet, schedule, cfg["sets"], model, refs, settings=settings,
                          per_digit=args.per_digit, w=args.w, seed=args.seed)
    if old is not None:
        table, command = curve.merge(old[0], table), f"{old[1]['command']} && {command}"
    out = curve.write(args.out or f"{args.ckpt}/{curve.CURVE_FILE}", table, ckpt=args.ckpt,
                      command=command, w=args.w, per_digit=args.per_digit, seed=args.seed,
                      classifier=args.classifier)
    print(out)
    return 0


def cmd_p1_sweep(args) -> int:
    from .. import p1
    from ..p1 import sweep
    unet, schedule, cfg = p1.load(args.ckpt, device=args.device)
    model, refs, command = _scorer(args, cfg["sets"], seed=args.seed)
    ws = [float(w) for w in args.w.split(",")]
    table = sweep.measure(unet, schedule, cfg["sets"], model, refs, ws=ws,
                          per_digit=args.per_digit, sampler=args.sampler, steps=args.steps,
                          seed=args.seed)
    print(sweep.write(args.out or f"{args.ckpt}/{sweep.SWEEP_FILE}", table, ckpt=args.ckpt,
                      classifier=args.classifier, command=command, sampler=args.sampler,
                      steps=args.steps, seed=args.seed, per_digit=args.per_digit,
                      data={"mode": args.mode, "data_seed": args.data_seed}))
    return 0


def cmd_p1_ablation(args) -> int:
    from ..p1 import ablation
    for run in args.runs:  # every run named must be a trained run, before minutes of work
        ablation.recipe(run)
    model, refs, command = _scorer(args)
    table = ablation.measure(args.runs, model, refs, sampler=args.sampler, steps=args.steps,
                             w=args.w, per_digit=args.per_digit, seed=args.seed,
                             device=args.device)
    print(ablation.write(args.out, table, command=command, sampler=args.sampler,
                         steps=args.steps, w=args.w, per_digit=args.per_digit, seed=args.seed))
    return 0


def cmd_p2_sample(args) -> int:
    from .. import p2
    eps_model = p2.face_model(unet_module=args.unet_module, unet_ckpt=args.unet_ckpt,
                              ckpt=args.ckpt, device=args.device)
    p2.sample_folder(eps_model, args.noise_dir, args.out, eta=args.eta,
                     convention=args.convention, seed=args.seed, batch_size=args.batch_size,
                     steps=args.steps, device=args.device)
    return 0


def cmd_p2_mse(args) -> int:
    from .. import p2
    names, mse = p2.mse_folders(args.pred, args.gt)
    for n, m in zip(names, mse):
        print(f"{n}.png: {m:.4f}")
    print(f"mean: {mse.mean():.4f}")
    return 0


def cmd_p3_zeroshot(args) -> int:
    from ..zeroshot import notebook as zeroshot
    clip = zeroshot.load_model(args.mode, pretrained=args.pretrained, ckpt=args.ckpt,
                         model_name=args.model, quick_gelu=not args.no_quick_gelu,
                         device=args.device)
    data = zeroshot.zeroshot_set(args.mode, data_dir=args.data, seed=args.data_seed,
                           cache_dir=args.cache_dir)
    kinds = ("single", "ensemble") if args.templates == "both" else (args.templates,)
    results = zeroshot.evaluate(clip, data, kinds)
    print(zeroshot.format_accuracies(results))
    if args.out:
        print(zeroshot.write_predictions(args.out, data, results[kinds[-1]]))
    return 0


def cmd_p3_replicates(args) -> int:
    import sys

    from ..personalize import replicates
    replicates.check_same_recipe(args.runs)  # before minutes of drawing
    table = replicates.measure(args.runs, t2i_ckpt=args.t2i, clip_ckpt=args.clip, n=args.n,
                               seed=args.seed, w=args.w, steps=args.steps, device=args.device,
                               cache_dir=args.cache_dir)
    print(table.to_string(index=False))
    command = "python -m hw2lib " + " ".join(sys.argv[1:])
    print(replicates.write(args.out, table, runs=args.runs, command=command, n=args.n,
                           seed=args.seed, steps=args.steps, w=args.w))
    return 0


def _register_p1(sub) -> None:
    s = group(sub, "p1", "problem 1: sample digits, score them")
    a = s.add_parser("sample", help="write <out>/<set>/{digit}_{NNN}.png as the course grades them")
    a.add_argument("--out", required=True)
    a.add_argument("--ckpt", default="checkpoints/p1_ddpm")
    a.add_argument("--sampler", choices=SAMPLERS, default="ddim",
                   help="dpmpp: DPM-Solver++(2M), e.g. --steps 15")
    a.add_argument("--steps", type=int, default=50,
                   help="sampler steps (DDPM: T = 1000 for the full chain; fewer: ancestral "
                        "sampling on the strided DDIM grid, DDIM with eta = 1)")
    a.add_argument("--w", type=float, default=4.0, help="guidance weight w (eps = (1+w)c - w u)")
    a.add_argument("--n-per-digit", type=int, default=50)
    precision_arg(a)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--overwrite", action="store_true",
                   help="replace set folders that already hold files (default: refuse)")
    device_arg(a)
    a.set_defaults(func=cmd_p1_sample)
    c = s.add_parser("score", help="accuracy of a classifier on a grading folder")
    c.add_argument("dir", help="the folder holding mnistm/ and svhn/ (other folders are ignored)")
    c.add_argument("--classifier", default="checkpoints/digit_classifier")
    c.add_argument("--course-classifier", default=None, help="the course's Classifier.pth")
    c.add_argument("--look", action="store_true",
                   help="also KID on the project CNN's features and the mean-colour distance "
                        "against the held-out split of --mode/--data (train vs test: the floor)")
    data_args(c, seed=False)
    c.set_defaults(func=cmd_p1_score)
    v = s.add_parser("curve", help="accuracy and look against the sampler and its steps, into "
                                   "<ckpt>/sampler_curve.json (the P1 notebook draws it)")
    v.add_argument("--ckpt", default="checkpoints/p1_ddpm")
    v.add_argument("--classifier", default="checkpoints/digit_classifier")
    v.add_argument("--out", default=None, help="default: <ckpt>/sampler_curve.json")
    v.add_argument("--per-digit", type=int, default=20, help="images per digit, set and setting")
    v.add_argument("--w", type=float, default=2.0,
                   help="guidance weight of every setting (the P1 notebook's)")
    v.add_argument("--settings", default=None,
                   help="comma-separated sampler-steps, e.g. ddim-10,dpmpp-15 (default: DDIM "
                        "5-100, DPM-Solver++ 5-25, DDPM-1000)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--add", action="store_true",
                   help="add the --settings to the checkpoint's curve (same w, seed and digit "
                        "CNN; a setting measured again replaces its rows)")
    data_args(v, seed=False)
    device_arg(v)
    v.set_defaults(func=cmd_p1_curve)
    w = s.add_parser("sweep", help="accuracy and look against the guidance weight at one sampler "
                                   "setting, into <ckpt>/guidance_sweep.json (the P1 notebook "
                                   "reads it when its sampler, steps, seed and data match)")
    w.add_argument("--ckpt", default="checkpoints/p1_ddpm")
    w.add_argument("--classifier", default="checkpoints/digit_classifier")
    w.add_argument("--out", default=None, help="default: <ckpt>/guidance_sweep.json")
    w.add_argument("--per-digit", type=int, default=50, help="images per digit, set and w")
    w.add_argument("--w", default="0,2,4,6", help="comma-separated guidance weights")
    w.add_argument("--sampler", choices=SAMPLERS, default="ddpm")
    w.add_argument("--steps", type=int, default=20)
    w.add_argument("--seed", type=int, default=0)
    data_args(w, seed=False)
    device_arg(w)
    w.set_defaults(func=cmd_p1_sweep)
    b = s.add_parser("ablation", help="training recipes at one budget: each run's accuracy and "
                                      "look with one sampler setting (the appendix shows it)")
    b.add_argument("runs", nargs="+", help="checkpoint folders of train p1 --out RUN")
    b.add_argument("--out", default=ABLATION_FILE)
    b.add_argument("--classifier", default="checkpoints/digit_classifier")
    b.add_argument("--sampler", choices=SAMPLERS, default="ddim")
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--w", type=float, default=4.0)
    b.add_argument("--per-digit", type=int, default=20, help="images per digit, set and run")
    b.add_argument("--seed", type=int, default=0)
    data_args(b, seed=False)
    device_arg(b)
    b.set_defaults(func=cmd_p1_ablation)


def _register_p2(sub) -> None:
    s = group(sub, "p2", "problem 2: DDIM from fixed noises, MSE against ground truth")
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
    a.add_argument("--steps", type=int, default=50, help="DDIM steps: the course's 50 (fewer "
                   "only to rehearse at minimal cost)")
    device_arg(a)
    a.set_defaults(func=cmd_p2_sample)
    m = s.add_parser("mse", help="per-image and mean MSE (0-255) of pred/*.png against gt/*.png")
    m.add_argument("--pred", required=True)
    m.add_argument("--gt", required=True)
    m.set_defaults(func=cmd_p2_mse)


def _register_p3(sub) -> None:
    s = group(sub, "p3", "problem 3: CLIP zero-shot; textual inversion's replicates")
    z = s.add_parser("zeroshot", help="zero-shot accuracy (course: ViT-B/32 from a local file)")
    data_args(z)
    z.add_argument("--pretrained", default=None, help="course mode: the CLIP weights file")
    z.add_argument("--model", default="ViT-B-32", help="course mode: the open_clip model name")
    z.add_argument("--no-quick-gelu", action="store_true",
                   help="the weights were not trained with QuickGELU (OpenAI's were)")
    z.add_argument("--ckpt", default="checkpoints/p3_clip", help="embedded CLIP folder")
    z.add_argument("--templates", choices=("single", "ensemble", "both"), default="both")
    z.add_argument("--out", default=None, help="write predictions to this CSV")
    device_arg(z)
    z.set_defaults(func=cmd_p3_zeroshot)
    r = s.add_parser("replicates", help="embedded textual inversion: score runs of one recipe "
                     "from other seeds (train ti --seed N --out RUN) at the P3.2 notebook's "
                     "settings")
    r.add_argument("runs", nargs="+", help="textual-inversion run folders (the committed one too)")
    r.add_argument("--t2i", default="checkpoints/p3_t2i", help="the scene model")
    r.add_argument("--clip", default="checkpoints/p3_clip", help="the embedded CLIP")
    r.add_argument("--n", type=int, default=32, help="generations per prompt")
    r.add_argument("--seed", type=int, default=0, help="seed of the noises")
    r.add_argument("--steps", type=int, default=25, help="DDIM steps")
    r.add_argument("--w", type=float, default=None, help="guidance weight (default: the model's)")
    r.add_argument("--cache-dir", default="data_cache", help="where the embedded data are cached")
    r.add_argument("--out", default="checkpoints/p3_ti/replicates.json")
    device_arg(r)
    r.set_defaults(func=cmd_p3_replicates)


def register(sub) -> None:
    _register_p1(sub)
    _register_p2(sub)
    _register_p3(sub)

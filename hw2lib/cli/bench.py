"""``bench``: sampler, training and report cost in one table."""
from __future__ import annotations


def cmd_bench(args) -> int:
    from .. import bench
    rows = bench.run(args.profile, p1_ckpt=args.p1_ckpt, classifier_ckpt=args.classifier,
                     timings=args.timings, out=args.out, sections=args.section or None)
    print(bench.to_markdown(rows))
    print(f"written to {args.out}/bench.json and bench.md")
    return 0


def register(sub) -> None:
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

"""``rehearse``: the course mode at the course's sizes on random weights (``make rehearsal``)."""
from __future__ import annotations

import argparse

from .common import device_arg


def cmd_rehearse(args) -> int:
    if args.build_only:
        from ..rehearse.build import SCALES, build
        info = build(args.out, SCALES[args.scale], seed=args.seed)
        print(f"rehearsal inputs in {args.out}: face UNet {info['face_params'] / 1e6:.1f}M, CLIP "
              f"{info['clip_params'] / 1e6:.1f}M, SD {sum(info['sd']['params'].values()) / 1e6:.0f}M "
              "parameters")
        return 0
    from ..rehearse.run import rehearse
    return rehearse(args.out, scale=args.scale, device=args.device, gpu_tflops=args.gpu_tflops,
                    report=not args.no_report, check=not args.no_check, only=args.only)


def register(sub) -> None:
    p = sub.add_parser("rehearse", help="run every course command and the course report at "
                       "course sizes on random weights; time, memory, GPU estimate")
    p.add_argument("--out", required=True, help="scratch folder (inputs, outputs, logs, page)")
    p.add_argument("--scale", choices=("full", "small"), default="full",
                   help="full: the course's sizes (make rehearsal); small: narrow models (tests)")
    device_arg(p)
    p.add_argument("--gpu-tflops", type=float, default=40.0,
                   help="effective GPU throughput assumed by the full-run estimate")
    p.add_argument("--no-report", action="store_true", help="skip make report MODE=course")
    p.add_argument("--no-check", action="store_true", help="skip report check (chromium)")
    p.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--only", action="append", metavar="STAGE",
                   help="rerun only the stages whose names start with this (repeatable), on the "
                        "inputs an earlier run of the same --out built")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_rehearse)

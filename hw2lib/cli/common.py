"""Arguments several command groups share."""
from __future__ import annotations

import sys

from ..modes import MODES


def command_line() -> str:
    """The command line as a user would retype it (for manifests)."""
    return "python -m hw2lib " + " ".join(sys.argv[1:])


def data_args(p, *, seed: bool = True) -> None:
    """--mode, --data, --data-seed, --cache-dir (and --seed)."""
    p.add_argument("--mode", choices=MODES, default="embedded")
    p.add_argument("--data", default=None, help="the hw2_data folder (course mode)")
    if seed:
        p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-seed", type=int, default=0, help="seed of the embedded data builders")
    p.add_argument("--cache-dir", default="data_cache")


def group(sub, name: str, help: str):
    """A command group ``name`` and the sub-parsers of its actions."""
    return sub.add_parser(name, help=help).add_subparsers(dest="action", required=True)


def device_arg(p) -> None:
    """--device: checked by :func:`hw2lib.cli.main` before the command runs."""
    p.add_argument("--device", default="cpu", help="cpu or cuda (mixed precision on CUDA; "
                   "without a GPU, cuda fails at once)")


def precision_arg(p, default: str | None = "auto", extra_help: str = "") -> None:
    """--precision auto|fp32|bf16 (:mod:`hw2lib.precision`)."""
    from ..precision import PRECISIONS
    p.add_argument("--precision", choices=PRECISIONS, default=default,
                   help="auto: bf16 autocast where a matmul benchmark (cached per machine) says "
                        "it pays, else fp32" + extra_help)

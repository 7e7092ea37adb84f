"""``python -m hw2lib ...``: the commands the Makefile and the course's scripts call.

Argument parsing only: each command group lives in a module of this package with a
``register(sub)`` function adding its sub-parsers; a command is a small function taking the
parsed arguments, calling the library and returning an exit code.

Exit codes: 0 a complete, correct result; 1 ``data check`` found a broken part (or an
unexpected error, with its traceback); 2 a user or input error (one message naming the file
and what to do; ``--debug`` shows the traceback); 130/143 training stopped by SIGINT/SIGTERM
(state saved, nothing exported).
"""
from __future__ import annotations

import argparse
import sys

from . import bench, data, problems, rehearse, report, ti, train

REGISTRY = [data.register, report.register, train.register, problems.register, ti.register,
            bench.register, rehearse.register]


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
    from ..errors import UserError
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "device", None):  # --device cuda without a GPU: fail before any work
            from ..device import resolve
            resolve(args.device)
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

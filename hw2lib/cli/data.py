"""``data check|preview``."""
from __future__ import annotations

import sys
from pathlib import Path

from .common import data_args, group


def cmd_check(args) -> int:
    from ..data import check_tree
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


def cmd_preview(args) -> int:
    from ..data.preview import preview
    for path in preview(args.out, mode=args.mode, data_dir=args.data, seed=args.data_seed,
                        cache_dir=args.cache_dir):
        print(path)
    return 0


def register(sub) -> None:
    s = group(sub, "data", "check the course data, preview the embedded data")
    c = s.add_parser("check", help="validate a hw2_data tree; exit 1 when a part is broken")
    c.add_argument("--data", required=True, help="the hw2_data folder")
    c.add_argument("--full", action="store_true", help="open every image (default: 200 per set)")
    c.set_defaults(func=cmd_check)
    v = s.add_parser("preview", help="write sample grids of the data as PNG")
    data_args(v, seed=False)
    v.add_argument("--out", required=True)
    v.set_defaults(func=cmd_preview)

"""``train <model>``: one sub-command per preset of :mod:`hw2lib.nets.presets`, its defaults
read from the preset (resumable: rerun the same command)."""
from __future__ import annotations

import argparse

from ..nets.presets import OPTION_HELP, PRESETS, Preset
from .common import command_line, data_args, precision_arg


def cmd_train(args) -> int:
    from .. import recipes
    preset = PRESETS[args.model]
    variant = getattr(args, "preset", None)
    cfg = recipes.config(args.model, variant=variant, steps=getattr(args, "steps", None),
                         batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                         precision=args.precision, max_minutes=args.max_minutes,
                         save_every=args.save_every)
    options = {k: getattr(args, k) for k in (*preset.options, *preset.needs)}
    out = recipes.train(args.model, args.out, cfg, variant=variant, mode=args.mode,
                        data_dir=args.data, data_seed=args.data_seed, cache_dir=args.cache_dir,
                        command=command_line(), export=args.export,
                        epochs=getattr(args, "epochs", None), **options)
    print(f"{args.model} written to {out}")
    return 0


def _preset_default(preset: Preset, field: str) -> str:
    """``(default: 5235)``, or one value per variant: ``(default: cpu 5235, gpu 30000)``."""
    values = {name: getattr(v.train, field) for name, v in preset.variants.items()}
    if not values:
        return f"(default: {getattr(preset.train, field)})"
    return "(default: " + ", ".join(f"{n} {v}" for n, v in values.items()) + ")"


def _add_preset(s, preset: Preset) -> None:
    """Training options default to None: what the user leaves out comes from the preset (or
    the chosen ``--preset`` variant)."""
    p = s.add_parser(preset.name, help=preset.help)
    p.add_argument("--out", default=preset.out)
    if preset.variants:
        names = list(preset.variants)
        p.add_argument("--preset", choices=names, default=names[0],
                       help="; ".join(f"{n}: {v.help}" for n, v in preset.variants.items()))
    if preset.epochs is not None:
        p.add_argument("--epochs", type=int, default=preset.epochs)
    else:
        p.add_argument("--steps", type=int, help=_preset_default(preset, "steps"))
    p.add_argument("--batch-size", type=int, help=_preset_default(preset, "batch_size"))
    p.add_argument("--lr", type=float, help=_preset_default(preset, "lr"))
    precision_arg(p, None, " " + _preset_default(preset, "precision"))
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop (and export) after this wall time")
    p.add_argument("--save-every", type=int,
                   help="write the resumable training state every this many steps "
                   + _preset_default(preset, "save_every"))
    p.add_argument("--export", choices=("ema", "model"), default=preset.export,
                   help="which weights to export: the EMA or the raw model")
    data_args(p)
    for name, needed in preset.needs.items():
        p.add_argument(f"--{name}", default=PRESETS[needed].out, help=OPTION_HELP[name])
    for name, default in preset.options.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                           help=OPTION_HELP[name])
        else:
            p.add_argument(flag, type=type(default), default=default, help=OPTION_HELP[name])
    p.set_defaults(func=cmd_train, model=preset.name)


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model (resumable: rerun the same command)")
    s = p.add_subparsers(dest="model", required=True)
    for preset in PRESETS.values():
        _add_preset(s, preset)

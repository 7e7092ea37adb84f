"""Which library function trains each preset of :mod:`hw2lib.nets.presets`, on which data.

``python -m hw2lib train <name>`` and ``make checkpoints`` both come here; the problem modules
keep their own ``train`` functions (the math and the export), this module only wires a preset
to its data and its function.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .nets.presets import PRESETS, Preset
from .train import TrainConfig


def preset_for(name: str, variant: str | None = None) -> Preset:
    """Preset ``name``, or its ``variant`` (e.g. ``p1``'s ``gpu``)."""
    p = PRESETS[name]
    return p.variants[variant] if variant else p


def config(name: str, variant: str | None = None, **overrides) -> TrainConfig:
    """The preset's training config with ``overrides`` (None values keep the preset's)."""
    return replace(preset_for(name, variant).train,
                   **{k: v for k, v in overrides.items() if v is not None})


def _sets(preset: Preset, *, mode: str, data_dir, data_seed: int, cache_dir):
    from .data import load_digit_sets
    if preset.data == "none":
        return None
    if preset.data == "embedded digits":
        mode, data_dir = "embedded", None
    return load_digit_sets(mode, data_dir=data_dir, seed=data_seed, cache_dir=cache_dir)


def train(name: str, out, cfg: TrainConfig, *, variant: str | None = None,
          mode: str = "embedded", data_dir=None,
          data_seed: int = 0, cache_dir="data_cache", command: str = "",
          export: str | None = None, epochs: int | None = None, progress: bool = True,
          **options) -> Path:
    """Train preset ``name`` with ``cfg`` into ``out`` (resumable: rerun to continue).
    ``options``: the preset's own options (:attr:`Preset.options`, :attr:`Preset.needs`)."""
    preset = preset_for(name, variant)
    unknown = set(options) - set(preset.options) - set(preset.needs)
    if unknown:
        raise TypeError(f"train {name}: unknown options {sorted(unknown)}")
    opts = {**{k: PRESETS[v].out for k, v in preset.needs.items()}, **preset.options,
            **{k: v for k, v in options.items() if v is not None}}
    export = export or preset.export
    sets = _sets(preset, mode=mode, data_dir=data_dir, data_seed=data_seed, cache_dir=cache_dir)
    if name == "classifier":
        from .classifier import train_and_save
        reblend = None
        if mode == "embedded" and opts["reblend"]:  # the builder's own digits, new backgrounds
            from .data.embedded import mnistm_train_digits
            reblend = mnistm_train_digits(seed=data_seed)
        return train_and_save(sets, out, cfg, epochs=epochs or preset.epochs, command=command,
                              progress=progress, reblend=reblend)
    if name == "p1":
        from . import p1
        return p1.train(sets, out, replace(cfg, snr_gamma=opts["snr_gamma"],
                                           guidance_null=opts["guidance_null"]),
                        unet_cfg=preset.unet, command=command, export=export, progress=progress)
    if name == "faces":
        from . import p2
        return p2.train_face_model(out, cfg, command=command, export=export, progress=progress,
                                   note=opts["note"])
    if name == "clip":
        from .zeroshot.digit_clip import train as train_clip
        return train_clip(sets, out, cfg, command=command, progress=progress)
    if name == "t2i":
        from .personalize.scene_model import train as train_t2i
        return train_t2i(sets, opts["clip"], out, cfg, command=command, progress=progress,
                         recolour=opts["recolour"], init=opts["init"] or None)
    if name == "ti":
        from .personalize.concepts import train_concepts
        return train_concepts(opts["t2i"], sets, out, cfg, command=command, progress=progress,
                              snr_gamma=opts["snr_gamma"] or None, target_w=opts["target_w"],
                              t_min=opts["t_min"], num_vectors=opts["num_vectors"],
                              relative=opts["relative"])
    raise KeyError(f"no recipe for preset {name!r}")

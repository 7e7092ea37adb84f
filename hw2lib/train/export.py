"""One checkpoint export for every trained model, and the reader of the UNet checkpoints.

A checkpoint folder holds ``model.safetensors`` (fp16 weights) or the model's own files,
``config.json`` (what rebuilds the network), ``loss.json`` (the loss curve, thinned) and
``manifest.json`` (how it was made: command, training config, steps, wall time, CPU time of
the training process (all its threads: on a shared machine the wall time also counts the time
other jobs held the cores), commit, data).
"""
from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..files import read_json, write_text_atomic


def thin_history(history: dict, every: int = 10) -> dict:
    """Loss history averaged over windows of ``every`` steps (keeps loss.json small)."""
    loss = np.asarray(history["loss"])
    m = len(loss) // every * every
    return {"step": list(range(every, m + 1, every)),
            "loss": loss[:m].reshape(-1, every).mean(1).round(5).tolist()}


def write_manifest(path, **fields) -> Path:
    """A JSON manifest next to a checkpoint: how it was made (command, config, data, time)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip() or None
    except OSError:
        commit = None
    fields.setdefault("commit", commit)
    fields.setdefault("torch", torch.__version__)
    return write_text_atomic(path, json.dumps(fields, indent=2, default=str) + "\n")


def export_checkpoint(out_dir, result, cfg, *, module: torch.nn.Module | None = None,
                      config: dict | None = None, command: str = "", sets: dict | None = None,
                      **manifest) -> Path:
    """Write a trained model's folder from :func:`~hw2lib.train.fit`'s ``result``.

    ``module``: the network whose weights go to ``model.safetensors`` (None: the caller wrote its
    own files, e.g. textual inversion's embeddings); ``config``: ``config.json``; ``sets``: the
    data sets it was trained on (their fingerprints go to the manifest); ``manifest``: any other
    field of ``manifest.json``."""
    from ..weights import save_weights
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if module is not None:
        save_weights(module, out_dir / "model.safetensors")
    if config is not None:
        write_text_atomic(out_dir / "config.json", json.dumps(config, indent=2, default=list))
    write_text_atomic(out_dir / "loss.json", json.dumps(thin_history(result.history)))
    if sets is not None:
        manifest["data_fingerprints"] = {n: ds.fingerprint for n, ds in sets.items()}
    write_manifest(out_dir / "manifest.json", command=command, train_config=asdict(cfg),
                   steps_done=len(result.history["step"]), wall_seconds=round(result.wall, 1),
                   cpu_seconds=None if result.cpu is None else round(result.cpu, 1),
                   precision=result.precision, made=time.strftime("%Y-%m-%d %H:%M:%S"),
                   **manifest)
    return out_dir


def load_checkpoint(ckpt_dir):
    """(unet in eval mode, linear schedule, config dict) from :func:`train_and_export`'s folder."""
    from ..diffusion import linear_schedule
    from ..nets.unet import UNetConfig, build_unet
    from ..weights import load_weights
    ckpt_dir = Path(ckpt_dir)
    cfg = read_json(ckpt_dir / "config.json", what="a checkpoint config written by hw2lib",
                    hint="train it with `make checkpoints` or give the folder of a checkpoint "
                         "written by hw2lib")
    try:
        unet_cfg, T = UNetConfig.from_dict(cfg["unet"]), int(cfg["T"])
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{ckpt_dir / 'config.json'}: not a UNet checkpoint config written by "
                         f"hw2lib ({type(e).__name__}: {e})") from e
    unet = load_weights(build_unet(unet_cfg), ckpt_dir / "model.safetensors")
    return unet.eval(), linear_schedule(T), cfg

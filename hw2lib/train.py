"""Training loops (accelerate): the same code runs on the CPU here and on GPUs with
``accelerate launch``. Resumable: a killed run restarted with the same arguments continues from
its last state file; every batch, time step and noise is drawn from a generator seeded by
(seed, step), so a resumed run sees the same data as an uninterrupted one.
"""
from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .diffusion import Schedule, derived_seed, eps_loss
from .errors import InputError, StaleStateError, TrainingInterrupted
from .files import torch_load, write_text_atomic


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 4000
    batch_size: int = 64
    lr: float = 2e-4
    warmup: int = 200
    ema_decay: float = 0.999
    p_uncond: float = 0.15  # guidance dropout: label replaced by the null label
    seed: int = 0
    save_every: int = 250
    precision: str = "auto"  # "auto" (hw2lib.precision: measured per machine) | "fp32" | "bf16"
    channels_last: bool = True
    max_minutes: float | None = None  # stop early (and save) after this wall time
    weight_decay: float = 0.0  # AdamW's
    lr_schedule: str = "warmup-constant"  # or "onecycle" (torch's OneCycleLR over ``steps``)
    clip_grad: float | None = 1.0  # gradient norm clipping (None: off)


def _step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(derived_seed(seed, step))


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def ema_decay(max_decay: float, step: int) -> float:
    """min(max_decay, (1 + step) / (10 + step)): the EMA warm-up of diffusers' EMAModel. A fixed
    0.999 from the start averages over the first, poor weights for thousands of steps (measured
    here: after 2,000 face steps the EMA's eps loss at t = 500 was 0.027 against 0.011 for the
    raw weights, and its DDIM samples were noise)."""
    return min(max_decay, (1 + step) / (10 + step))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1 - decay)


@dataclass
class TrainResult:
    ema: torch.nn.Module
    model: torch.nn.Module
    history: dict  # {"step": [...], "loss": [...]}
    wall: float  # seconds, summed over resumed runs
    precision: dict | None = None  # hw2lib.precision's choice for this run (and its peaks)


class _StopOnSignal:
    """Turns SIGINT/SIGTERM into a request to stop after the current step (which is then saved,
    so a rerun resumes); :func:`fit` then raises :class:`TrainingInterrupted`, so nothing is
    exported from a partial run."""

    def __init__(self):
        import signal
        import threading
        self.requested = False
        self.signum = signal.SIGINT
        self._old = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        self.requested = True
        self.signum = signum

    def restore(self):
        import signal
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def fit(model: torch.nn.Module, batch_loss, cfg: TrainConfig, out_dir, *,
        progress: bool = True, desc: str = "train") -> TrainResult:
    """The resumable training loop shared by every model of the project.

    ``batch_loss(model, g)`` draws its batch from the generator ``g`` (seeded by (seed, step), so
    a resumed run sees the same batches as an uninterrupted one) and returns a scalar loss.
    AdamW with linear warm-up then a constant rate (or one cycle, ``cfg.lr_schedule``), gradient
    clipping at ``cfg.clip_grad``, an EMA copy with warm-up, a tqdm bar with the mean loss of the
    last 50 steps. ``out_dir/train_state.pt`` is written every ``cfg.save_every`` steps, at the
    end, on ``max_minutes`` and on SIGINT/SIGTERM; after a signal
    :class:`~hw2lib.errors.TrainingInterrupted` is raised (the caller exports nothing). The state
    file holds only tensors and plain Python values and is loaded with
    ``weights_only=True``: a file planted in an output folder cannot run code.
    """
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / "train_state.pt"
    from .precision import resolve as resolve_precision
    prec = resolve_precision(cfg.precision, device="cuda" if torch.cuda.is_available() else "cpu")
    if progress:
        print(f"[{desc}] {prec.describe()}", flush=True)
    acc = Accelerator(mixed_precision="bf16" if prec.autocast else "no")
    torch.manual_seed(cfg.seed)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    # ema_decay = 0: no EMA copy (large frozen parts, e.g. textual inversion's text encoder)
    ema = copy.deepcopy(model).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = _lr_scheduler(opt, cfg)
    history = {"step": [], "loss": []}
    start, wall = 0, 0.0
    if state_path.exists():
        st = _read_state(state_path)
        # steps and max_minutes only say where to stop (the learning rate is constant after
        # warm-up), so a run may be extended or cut short, and save_every only when to save;
        # anything else must match. Fields added since the state was written take their
        # defaults (what older code did).
        # precision: a run may resume on another machine, where "auto" picks differently
        free = {"max_minutes": None, "save_every": None, "precision": None}
        if cfg.lr_schedule != "onecycle":
            free["steps"] = None
        if {**asdict(TrainConfig()), **st["config"], **free} != {**asdict(cfg), **free}:
            raise StaleStateError(f"{state_path} was written with another config; remove it to "
                                  "restart")
        model.load_state_dict(st["model"])
        if ema is not None:
            ema.load_state_dict(st["ema"])
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        start, history, wall = st["step"], st["history"], st["wall"]
    model, opt = acc.prepare(model, opt)
    if ema is not None:
        ema.to(acc.device)

    def save(step, seconds):
        _atomic_save({"model": acc.unwrap_model(model).state_dict(),
                      "ema": ema.state_dict() if ema is not None else None,
                      "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step,
                      "history": history, "wall": seconds, "config": asdict(cfg)}, state_path)

    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not progress,
               desc=desc, dynamic_ncols=True)
    t0, step = time.perf_counter(), start
    model.train()
    stop = _StopOnSignal()
    try:
        for step in bar:
            with acc.autocast():
                loss = batch_loss(model, _step_generator(cfg.seed, step))
            opt.zero_grad(set_to_none=True)
            acc.backward(loss)
            if cfg.clip_grad is not None:
                acc.clip_grad_norm_(params, cfg.clip_grad)
            opt.step()
            sched.step()
            if ema is not None:
                ema_update(ema, acc.unwrap_model(model), ema_decay(cfg.ema_decay, step))
            history["step"].append(step)
            history["loss"].append(float(loss.detach()))
            bar.set_postfix(loss=f"{sum(history['loss'][-50:]) / len(history['loss'][-50:]):.4f}")
            elapsed, done = wall + time.perf_counter() - t0, step + 1
            out_of_time = cfg.max_minutes is not None and elapsed > cfg.max_minutes * 60
            if done % cfg.save_every == 0 or done == cfg.steps or out_of_time or stop.requested:
                save(done, elapsed)
            if stop.requested:
                raise TrainingInterrupted(
                    f"{desc}: stopped by signal {stop.signum} after step {done}; the state is "
                    f"saved in {state_path}, nothing was exported: rerun the command to resume",
                    int(stop.signum))
            if out_of_time:
                break
    finally:
        stop.restore()
        bar.close()
    unwrapped = acc.unwrap_model(model).to(memory_format=torch.contiguous_format)
    ema = ema.to(memory_format=torch.contiguous_format) if ema is not None else unwrapped
    return TrainResult(ema, unwrapped.eval(), history,
                       wall + time.perf_counter() - t0, prec.as_dict())


def _lr_scheduler(opt, cfg: TrainConfig):
    if cfg.lr_schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps)
    if cfg.lr_schedule == "warmup-constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / cfg.warmup))
    raise ValueError(f"lr_schedule must be 'warmup-constant' or 'onecycle', "
                     f"got {cfg.lr_schedule!r}")


def _read_state(path: Path) -> dict:
    """A training state written by :func:`fit`, loaded with ``weights_only=True`` (tensors and
    plain Python values only: nothing in it can run code)."""
    hint = "remove it to restart training"
    st = torch_load(path, what="a training state written by hw2lib", hint=hint)
    if not isinstance(st, dict) or not {"model", "opt", "sched", "step", "config"} <= set(st):
        raise InputError(f"{path}: not a training state written by hw2lib; {hint}")
    return st


def train_eps_model(model: torch.nn.Module, schedule: Schedule, images: torch.Tensor,
                    labels: torch.Tensor | None, cfg: TrainConfig, out_dir, *,
                    null_label: int | None = None, progress: bool = True) -> TrainResult:
    """Train ``model(x, t, class_labels=y).sample`` to predict eps (Ho et al. eq. 14) with
    :func:`fit`. images: float (N, C, H, W) in [-1, 1]; labels: int64 (N,) or None
    (unconditional); a fraction ``cfg.p_uncond`` of labels becomes ``null_label``."""
    n = len(images)

    def batch_loss(model, g):
        idx = torch.randint(0, n, (cfg.batch_size,), generator=g)
        x0 = images[idx]
        t = torch.randint(0, schedule.T, (cfg.batch_size,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        cond = {}
        if labels is not None:
            y = labels[idx].clone()
            drop = torch.rand(cfg.batch_size, generator=g) < cfg.p_uncond
            y[drop] = null_label
            cond["class_labels"] = y
        device = next(model.parameters()).device
        x0, t, noise = x0.to(device), t.to(device), noise.to(device)
        cond = {k: v.to(device) for k, v in cond.items()}
        if cfg.channels_last:
            x0, noise = (v.contiguous(memory_format=torch.channels_last) for v in (x0, noise))
        return eps_loss(lambda x, tt, **c: model(x, tt, **c).sample, schedule, x0, t=t,
                        noise=noise, **cond)

    return fit(model, batch_loss, cfg, out_dir, progress=progress)


def train_and_export(unet_cfg, images: torch.Tensor, labels: torch.Tensor | None,
                     cfg: TrainConfig, out_dir, *, T: int = 1000, null_label: int | None = None,
                     config_extra: dict | None = None, manifest_extra: dict | None = None,
                     command: str = "", export: str = "ema", progress: bool = True) -> Path:
    """Train a UNet2DModel eps-model on a linear schedule and export into ``out_dir``:
    ``model.safetensors`` (fp16 EMA weights), ``config.json`` (UNet config, T, ``config_extra``),
    ``loss.json`` and ``manifest.json`` (command, config, steps, wall time, commit). The training
    state lives in ``out_dir/state`` (kept out of git) so a killed run resumes. ``export``:
    "ema" (default) or "model" (the raw weights, for runs whose EMA still lags)."""
    from .diffusion import linear_schedule
    from .nets.unet import build_unet, n_params
    from .weights import save_weights
    out_dir = Path(out_dir)
    torch.manual_seed(cfg.seed)
    model = build_unet(unet_cfg)
    if export not in ("ema", "model"):
        raise ValueError(f"export must be 'ema' or 'model', got {export!r}")
    res = train_eps_model(model, linear_schedule(T), images, labels, cfg, out_dir / "state",
                          null_label=null_label, progress=progress)
    weights = res.ema if export == "ema" else res.model
    history, wall = res.history, res.wall
    save_weights(weights, out_dir / "model.safetensors")
    write_text_atomic(out_dir / "config.json", json.dumps(
        {"unet": asdict(unet_cfg), "T": T, "null_label": null_label, **(config_extra or {})},
        indent=2))
    write_text_atomic(out_dir / "loss.json", json.dumps(thin_history(history)))
    write_manifest(out_dir / "manifest.json", command=command, train_config=asdict(cfg),
                   unet_params=n_params(weights), steps_done=len(history["step"]), weights=export,
                   n_train_images=len(images), wall_seconds=round(wall, 1),
                   precision=res.precision,
                   made=time.strftime("%Y-%m-%d %H:%M:%S"), **(manifest_extra or {}))
    return out_dir


def load_checkpoint(ckpt_dir):
    """(unet in eval mode, linear schedule, config dict) from :func:`train_and_export`'s folder."""
    from .diffusion import linear_schedule
    from .nets.unet import UNetConfig, build_unet
    from .weights import load_weights
    from .files import read_json
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


def thin_history(history: dict, every: int = 10) -> dict:
    """Loss history averaged over windows of ``every`` steps (keeps loss.json small)."""
    import numpy as np
    loss = np.asarray(history["loss"])
    m = len(loss) // every * every
    return {"step": list(range(every, m + 1, every)),
            "loss": loss[:m].reshape(-1, every).mean(1).round(5).tolist()}


def write_manifest(path, **fields) -> Path:
    """A JSON manifest next to a checkpoint: how it was made (command, config, data, time)."""
    import subprocess
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip() or None
    except OSError:
        commit = None
    fields.setdefault("commit", commit)
    fields.setdefault("torch", torch.__version__)
    return write_text_atomic(path, json.dumps(fields, indent=2, default=str) + "\n")

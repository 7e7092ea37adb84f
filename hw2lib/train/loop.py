"""The training loop every model of the project shares (accelerate): the same code runs on the
CPU here and on GPUs with ``accelerate launch``. Resumable: a killed run restarted with the same arguments continues from
its last state file; every batch, time step and noise is drawn from a generator seeded by
(seed, step), so a resumed run sees the same data as an uninterrupted one.
"""
from __future__ import annotations

import copy
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..diffusion import derived_seed
from ..errors import InputError, StaleStateError, TrainingInterrupted
from ..files import torch_load


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 4000
    batch_size: int = 64
    lr: float = 2e-4
    warmup: int = 200
    ema_decay: float = 0.999
    p_uncond: float = 0.15  # guidance dropout: label replaced by the null label
    guidance_null: str = "shared"  # P1: one null label, or "per-set" (hw2lib.p1.model)
    seed: int = 0
    save_every: int = 250
    precision: str = "auto"  # "auto" (hw2lib.precision: measured per machine) | "fp32" | "bf16"
    channels_last: bool = True
    max_minutes: float | None = None  # stop early (and save) after this wall time
    weight_decay: float = 0.0  # AdamW's
    lr_schedule: str = "warmup-constant"  # or "onecycle" (torch's OneCycleLR over ``steps``)
    clip_grad: float | None = 1.0  # gradient norm clipping (None: off)
    snr_gamma: float = 0.0  # eps-models: Min-SNR-gamma loss weighting (0: the plain eps loss)


def _step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """The generator of one step's batch; under ``accelerate launch`` each process (rank > 0)
    draws its own batch (process 0 draws what a single-process run draws)."""
    s = derived_seed(seed, step)
    return torch.Generator().manual_seed(s if rank == 0 else derived_seed(s, rank))


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@dataclass
class TrainResult:
    ema: torch.nn.Module
    model: torch.nn.Module
    history: dict  # {"step": [...], "loss": [...]}
    wall: float  # seconds, summed over resumed runs
    precision: dict | None = None  # hw2lib.precision's choice for this run (and its peaks)
    cpu: float | None = None  # CPU seconds of this process (all threads), summed over resumed runs
    # (None: a resumed state written before they were counted)


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
    AdamW with diffusers' linear warm-up then a constant rate (or torch's one cycle,
    ``cfg.lr_schedule``), gradient clipping at ``cfg.clip_grad``, diffusers' ``EMAModel`` with its
    warm-up min(decay, (1 + n) / (10 + n)) (a fixed 0.999 from the start averages over the first,
    poor weights for thousands of steps: measured here, after 2,000 face steps the EMA's eps loss
    at t = 500 was 0.027 against 0.011 for the raw weights), a tqdm bar with the mean loss of the
    last 50 steps. ``out_dir/train_state.pt`` is written every ``cfg.save_every`` steps, at the
    end, on ``max_minutes`` and on SIGINT/SIGTERM; after a signal
    :class:`~hw2lib.errors.TrainingInterrupted` is raised (the caller exports nothing). The state
    file holds only tensors and plain Python values and is loaded with
    ``weights_only=True``: a file planted in an output folder cannot run code.
    """
    from accelerate import Accelerator
    from diffusers.training_utils import EMAModel
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / "train_state.pt"
    from ..precision import resolve as resolve_precision
    prec = resolve_precision(cfg.precision, device="cuda" if torch.cuda.is_available() else "cpu")
    if progress:
        print(f"[{desc}] {prec.describe()}", flush=True)
    # accelerate keeps one process-wide state and refuses a second Accelerator with another
    # precision; a process (a notebook, the tests) may train twice, each with its own precision
    from accelerate.state import AcceleratorState
    AcceleratorState._reset_state(True)
    acc = Accelerator(mixed_precision="bf16" if prec.autocast else "no")
    torch.manual_seed(cfg.seed)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    # ema_decay = 0: no EMA (large frozen parts, e.g. textual inversion's text encoder)
    ema = EMAModel(params, decay=cfg.ema_decay) if cfg.ema_decay > 0 else None
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = _lr_scheduler(opt, cfg)
    history = {"step": [], "loss": []}
    start, wall, cpu = 0, 0.0, 0.0
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
        start, history, wall, cpu = st["step"], st["history"], st["wall"], st.get("cpu")
    model, opt = acc.prepare(model, opt)
    if ema is not None:
        ema.to(acc.device)  # its shadow parameters follow the model

    def cpu_now():
        return None if cpu is None else cpu + time.process_time() - c0

    def save(step, seconds):
        if not acc.is_main_process:  # accelerate launch: the processes hold the same weights
            return
        _atomic_save({"model": acc.unwrap_model(model).state_dict(),
                      "ema": ema.state_dict() if ema is not None else None,
                      "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step,
                      "history": history, "wall": seconds, "cpu": cpu_now(),
                      "config": asdict(cfg)}, state_path)

    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not progress,
               desc=desc, dynamic_ncols=True)
    t0, c0, step = time.perf_counter(), time.process_time(), start
    model.train()
    stop = _StopOnSignal()
    try:
        for step in bar:
            with acc.autocast():
                loss = batch_loss(model, _step_generator(cfg.seed, step, acc.process_index))
            opt.zero_grad(set_to_none=True)
            acc.backward(loss)
            if cfg.clip_grad is not None:
                acc.clip_grad_norm_(params, cfg.clip_grad)
            opt.step()
            sched.step()
            if ema is not None:
                ema.step(params)
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
    averaged = unwrapped
    if ema is not None:  # the EMA weights in a copy of the network
        averaged = copy.deepcopy(unwrapped)
        ema.copy_to([p for p in averaged.parameters() if p.requires_grad])
        averaged.eval().requires_grad_(False)
    return TrainResult(averaged, unwrapped.eval(), history, wall + time.perf_counter() - t0,
                       prec.as_dict(), cpu_now())


def _lr_scheduler(opt, cfg: TrainConfig):
    if cfg.lr_schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps)
    if cfg.lr_schedule == "warmup-constant":
        from diffusers.optimization import get_constant_schedule_with_warmup
        return get_constant_schedule_with_warmup(opt, num_warmup_steps=cfg.warmup)
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

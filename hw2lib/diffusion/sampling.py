"""Samplers over any ``eps_model(x_t, t, **cond) -> eps``: ancestral DDPM and DDIM with eta.

Each sampler is one step function (:func:`ddpm_step`, :func:`ddim_step`: x_t and the model's
eps in, x_{t-1} and x0_hat out, as diffusers' ``scheduler.step()``) and a loop over the grid
(:func:`ddpm_sample`, :func:`ddim_sample`). The loops run under ``torch.inference_mode()``, take keyword-only ``noise`` (x_T), ``generator``,
``record`` (time steps whose x_t to keep) and ``progress``, and return a :class:`SampleResult`.
Random draws follow diffusers' order (x_T first, then one ``randn`` per stochastic step, none at
the last step), so the same generator seed gives the same samples as its schedulers.
``generator`` may also be a list with one generator per image (as diffusers' pipelines accept):
each image's noise then comes from its own generator, whatever the batch it is drawn in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch

from .schedule import Schedule, posterior_mean, predict_x0, x0_from_eps

EpsModel = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class StepOutput:
    """One reverse step, named as diffusers' ``SchedulerOutput``: x_{t-1} and x0_hat."""
    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


@dataclass(frozen=True)
class SampleResult:
    """``sample``: x_0 (B, C, H, W); ``trajectory``: {t: x_t} for the requested time steps (x_t
    is the state *entering* step t, so the largest t is the starting noise)."""
    sample: torch.Tensor
    trajectory: dict[int, torch.Tensor] = field(default_factory=dict)


def derived_seed(seed: int, index: int) -> int:
    """A seed for item ``index`` (a training step, an image) of a run seeded by ``seed``."""
    return seed * 1_000_003 + index


def image_generators(seed: int, indices) -> list[torch.Generator]:
    """One generator per image, seeded by (``seed``, the image's index): the noise an image
    gets does not depend on the batch it is drawn in, and differs between images."""
    return [torch.Generator().manual_seed(derived_seed(seed, int(i))) for i in indices]


def randn(shape, generator, *, device="cpu", dtype=torch.float32) -> torch.Tensor:
    """``torch.randn`` drawn on the generator's device (the CPU for a seeded
    ``torch.Generator()``) and moved to ``device``: a seed gives the same numbers whichever
    device the model runs on. With a list of generators, row i of the batch comes from
    generator i."""
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}")
        return torch.stack([torch.randn(tuple(shape[1:]), generator=g, dtype=dtype)
                            for g in generator]).to(device)
    gen_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gen_device, dtype=dtype).to(device)


def _start(shape, noise, generator, device):
    """x_T: ``noise`` (on ``device``, default its own), or drawn from ``generator``."""
    if noise is not None:
        return noise.to(device=device or noise.device, dtype=torch.float32).clone()
    if shape is None:
        raise ValueError("give either noise= (x_T) or shape=")
    return randn(shape, generator, device=device or "cpu")


def _steps(ts, progress: bool, desc: str):
    if not progress:
        return ts
    from tqdm.auto import tqdm
    return tqdm(ts, desc=desc, leave=False)


def ddpm_step(schedule: Schedule, eps: torch.Tensor, t: int, x_t: torch.Tensor, *,
              generator=None, clip_x0: bool = False) -> StepOutput:
    """x_{t-1} = mu_tilde_t(x_t, x0_hat) + sigma_t z with sigma_t^2 = beta_tilde_t and no noise
    at t = 0   (Ho et al. eq. 7 and Alg. 2, with x0_hat from eq. 4)."""
    tt = torch.full((x_t.shape[0],), t, device=x_t.device, dtype=torch.long)
    x0 = predict_x0(schedule, x_t, tt, eps)
    if clip_x0:
        x0 = x0.clamp(-1, 1)
    x = posterior_mean(schedule, x0, x_t, tt)
    if t > 0:
        z = randn(x.shape, generator, device=x.device, dtype=x.dtype)
        x = x + schedule.posterior_variance()[t].sqrt().to(x.dtype) * z
    return StepOutput(x, x0)


def ddpm_sample(eps_model: EpsModel, schedule: Schedule, *, shape=None, noise=None,
                generator=None, cond: dict | None = None,
                clip_x0: bool = False, record: Iterable[int] = (), progress: bool = False,
                device=None) -> SampleResult:
    """Ancestral sampling over all T steps with sigma_t^2 = beta_tilde_t (Ho et al. Alg. 2)."""
    cond, keep = cond or {}, set(record)
    with torch.inference_mode():
        x = _start(shape, noise, generator, device)
        traj = {}
        for t in _steps(range(schedule.T - 1, -1, -1), progress, "DDPM"):
            if t in keep:
                traj[t] = x.clone()
            tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
            eps = eps_model(x, tt, **cond).float()
            x = ddpm_step(schedule, eps, t, x, generator=generator, clip_x0=clip_x0).prev_sample
        return SampleResult(x, traj)


def ddim_timesteps(T: int, n_steps: int, *, offset: int = 0) -> list[int]:
    """Uniform ("leading") grid, descending: range(0, T, T // n_steps) + offset, reversed.

    T=1000, n=50: 980, 960, ..., 0; with offset=1: 981, ..., 1 (the course's P2 grid).
    """
    if not 1 <= n_steps <= T:
        raise ValueError(f"n_steps must be in 1..{T}, got {n_steps}")
    return [t + offset for t in range(0, T, T // n_steps)][:n_steps][::-1]


def ddim_sigma(a_t: torch.Tensor, a_prev: torch.Tensor, eta: float) -> torch.Tensor:
    """sigma_t = eta sqrt((1 - a_prev) / (1 - a_t)) sqrt(1 - a_t / a_prev)   (Song et al. eq. 16)."""
    return eta * ((1 - a_prev) / (1 - a_t)).sqrt() * (1 - a_t / a_prev).sqrt()


def ddim_alpha_bars(schedule: Schedule, timesteps: Sequence[int], *, set_alpha_to_one: bool = True,
                    alpha_bar_shift: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(alpha_bar_t, alpha_bar_prev) for each step of a descending grid.

    The schedule is read at ``t - alpha_bar_shift`` (0: alpha_bar[t], the diffusers convention;
    1: alpha_bar[t-1], found in some public code for a grid offset by one). After the last step,
    alpha_bar_prev is 1 when ``set_alpha_to_one`` (x_0 itself, diffusers' default for SD) and
    alpha_bar[0] otherwise: one boolean, as diffusers' ``DDIMScheduler`` spells it."""
    ab = schedule.alpha_bar
    ts = list(timesteps)
    idx = [t - alpha_bar_shift for t in ts]
    if min(idx) < 0 or max(idx) >= schedule.T:
        raise ValueError(f"time steps {ts[0]}..{ts[-1]} with shift {alpha_bar_shift} leave "
                         f"0..{schedule.T - 1}")
    a_ts = [ab[i] for i in idx]
    final = ab.new_tensor(1.0) if set_alpha_to_one else ab[0]
    return list(zip(a_ts, a_ts[1:] + [final]))


def ddim_step(eps: torch.Tensor, x_t: torch.Tensor, a_t: torch.Tensor, a_prev: torch.Tensor, *,
              eta: float = 0.0, generator=None, clip_x0: bool = False,
              clipped_eps: bool = False) -> StepOutput:
    """One DDIM step from alpha_bar_t = ``a_t`` to alpha_bar_prev = ``a_prev``   (Song et al. eq. 12):

    x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t),
    x_prev = sqrt(a_prev) x0_hat + sqrt(1 - a_prev - sigma^2) eps + sigma z,

    sigma from :func:`ddim_sigma`. ``clip_x0`` clamps x0_hat to [-1, 1]; eps is kept (diffusers'
    default), or with ``clipped_eps`` re-derived from the clamped x0_hat, eps = (x_t - sqrt(a_t)
    x0_hat) / sqrt(1 - a_t), so that the step stays on the line through x_t and x0_hat (GLIDE;
    diffusers' ``use_clipped_model_output=True``). No noise is drawn when eta = 0."""
    x0 = x0_from_eps(x_t, eps, a_t)
    if clip_x0:
        x0 = x0.clamp(-1, 1)
        if clipped_eps:
            eps = (x_t - a_t.sqrt().float() * x0) / (1 - a_t).sqrt().float()
    sigma = ddim_sigma(a_t, a_prev, eta)
    x = a_prev.sqrt().float() * x0 + (1 - a_prev - sigma ** 2).sqrt().float() * eps
    if eta > 0:
        x = x + sigma.float() * randn(x.shape, generator, device=x.device, dtype=x.dtype)
    return StepOutput(x, x0)


def ddim_sample(eps_model: EpsModel, schedule: Schedule, *, timesteps: Sequence[int],
                eta: float = 0.0, shape=None, noise=None, generator=None,
                cond: dict | None = None, clip_x0: bool = False, clipped_eps: bool = False,
                set_alpha_to_one: bool = True, alpha_bar_shift: int = 0,
                record: Iterable[int] = (), progress: bool = False, device=None) -> SampleResult:
    """DDIM (Song et al. 2021) over an explicit descending grid of time steps: the model is
    called with each grid step t, then :func:`ddim_step` with :func:`ddim_alpha_bars`."""
    cond, keep = cond or {}, set(record)
    ts = list(timesteps)
    pairs = ddim_alpha_bars(schedule, ts, set_alpha_to_one=set_alpha_to_one,
                            alpha_bar_shift=alpha_bar_shift)
    with torch.inference_mode():
        x = _start(shape, noise, generator, device)
        traj = {}
        for t, (a_t, a_prev) in _steps(list(zip(ts, pairs)), progress, "DDIM"):
            if t in keep:
                traj[t] = x.clone()
            tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
            eps = eps_model(x, tt, **cond).float()
            x = ddim_step(eps, x, a_t, a_prev, eta=eta, generator=generator,
                          clip_x0=clip_x0, clipped_eps=clipped_eps).prev_sample
        return SampleResult(x, traj)

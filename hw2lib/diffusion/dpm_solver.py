"""DPM-Solver++(2M): the second-order multistep solver of the diffusion ODE in data prediction
(Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic
Models", arXiv:2211.01095, Algorithm 2), over any ``eps_model(x_t, t, **cond) -> eps``.

Notation of the paper, for the discrete schedule of :mod:`.schedule`:
alpha_t = sqrt(alpha_bar_t), sigma_t = sqrt(1 - alpha_bar_t), lambda_t = log(alpha_t / sigma_t)
(half the log-SNR), and the data prediction x_theta(x_t, t) = (x_t - sigma_t eps) / alpha_t
(eq. 4 solved for x_0). The solution of the diffusion ODE from s to t is (eq. 9)

    x_t = sigma_t / sigma_s x_s + sigma_t int_{lambda_s}^{lambda_t} e^lambda x_theta dlambda,

and DPM-Solver++(2M) approximates x_theta in that integral linearly in lambda from the current
and the previous model output, so each step costs one model evaluation.

The default grid and the last step follow diffusers' ``DPMSolverMultistepScheduler``
(``algorithm_type="dpmsolver++"``, ``solver_order=2``, ``timestep_spacing="linspace"``,
``final_sigmas_type="zero"``): ``tests/test_dpm_solver.py`` checks the two against each other on
the same model and noise.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch

from .sampling import EpsModel, SampleResult, _start, _steps
from .schedule import Schedule


def dpm_solver_timesteps(T: int, n_steps: int) -> list[int]:
    """``n_steps`` model time steps, descending, evenly spaced over [0, T-1] with the last
    point (0) dropped: round(linspace(0, T-1, n+1))[::-1][:-1] (diffusers' "linspace" spacing).
    T = 1000, n = 10: 999, 899, ..., 100. The solver's last step goes from the smallest of them
    to sigma = 0 (x_0)."""
    if not 1 <= n_steps <= T:
        raise ValueError(f"n_steps must be in 1..{T}, got {n_steps}")
    return np.linspace(0, T - 1, n_steps + 1).round()[::-1][:-1].astype(int).tolist()


def dpmpp_2m_sample(eps_model: EpsModel, schedule: Schedule, *, timesteps: Sequence[int],
                    order: int = 2, shape=None, noise=None, generator=None,
                    cond: dict | None = None, clip_x0: bool = False,
                    record: Iterable[int] = (), progress: bool = False,
                    device=None) -> SampleResult:
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) from x_T over the descending ``timesteps``
    t_0 > t_1 > ... > t_{M-1}, then one last step to sigma = 0: M model evaluations.

    The first step is first order (no previous output yet) and so is the last one (at sigma = 0,
    h is infinite and the step returns the data prediction x_theta itself, as diffusers'
    ``final_sigmas_type="zero"`` does). ``order=1`` makes every step first order:
    DPM-Solver++(1), which is DDIM with eta = 0 on the same grid (Lu et al. 2022, sec. 4.1).
    ``clip_x0`` clamps the data prediction to [-1, 1] (static thresholding; diffusers'
    ``thresholding=True, sample_max_value=1.0``). ``noise`` (x_T), ``generator``, ``record`` and
    ``progress`` as in :func:`~.sampling.ddim_sample`; the solver draws no noise after x_T.
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order}")
    cond, keep = cond or {}, set(record)
    ts = list(timesteps)
    if any(a <= b for a, b in zip(ts, ts[1:])) or ts[-1] < 0 or ts[0] >= schedule.T:
        raise ValueError(f"time steps must descend within 0..{schedule.T - 1}, got {ts}")
    ab = schedule.alpha_bar  # float64
    alpha = [ab[t].sqrt() for t in ts] + [ab.new_tensor(1.0)]   # alpha_t; sigma = 0 at the end
    sigma = [(1 - ab[t]).sqrt() for t in ts] + [ab.new_tensor(0.0)]
    lam = [torch.log(a / s) for a, s in zip(alpha[:-1], sigma[:-1])]  # lambda_t = log(alpha/sigma)
    with torch.inference_mode():
        x = _start(shape, noise, generator, device)
        traj, x0_prev = {}, None
        for i, t in enumerate(_steps(ts, progress, "DPM-Solver++")):
            if t in keep:
                traj[t] = x.clone()
            tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
            eps = eps_model(x, tt, **cond).float()
            # data prediction x_theta(x_t, t) = (x_t - sigma_t eps) / alpha_t   (eq. 4 for x_0)
            x0 = (x - sigma[i].float() * eps) / alpha[i].float()
            if clip_x0:
                x0 = x0.clamp(-1, 1)
            if i == len(ts) - 1:
                # to sigma = 0: h = inf, e^{-h} = 0, and eq. 10 leaves x_0 = x_theta
                x = x0
            else:
                h = lam[i + 1] - lam[i]  # h_i = lambda_{t_i} - lambda_{t_{i-1}}
                if order == 1 or x0_prev is None:
                    d = x0  # first order (DPM-Solver++(1), Alg. 2's first step, eq. 10)
                else:
                    r = (lam[i] - lam[i - 1]) / h  # r_i = h_{i-1} / h_i
                    # D_i = (1 + 1/(2 r_i)) x_theta(t_{i-1}) - 1/(2 r_i) x_theta(t_{i-2})   (Alg. 2)
                    d = (1 + 1 / (2 * r)).float() * x0 - (1 / (2 * r)).float() * x0_prev
                # x_{t_i} = sigma_{t_i} / sigma_{t_{i-1}} x_{t_{i-1}} - alpha_{t_i} (e^{-h_i} - 1) D_i
                x = (sigma[i + 1] / sigma[i]).float() * x \
                    - (alpha[i + 1] * torch.expm1(-h)).float() * d
            x0_prev = x0
        return SampleResult(x, traj)

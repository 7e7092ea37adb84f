"""Noise schedules and the forward process q(x_t | x_0). Knows nothing about networks or data.

Time steps are integers t in [0, T); ``alpha_bar[t] = prod_{s<=t} (1 - beta_s)`` (Ho et al. 2020).
The schedule is computed in float64 and cast where it meets a tensor.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Schedule:
    """betas, alphas = 1 - betas and alpha_bar = cumprod(alphas): float64 tensors of shape (T,)."""
    betas: torch.Tensor

    @property
    def T(self) -> int:
        return len(self.betas)

    @property
    def alphas(self) -> torch.Tensor:
        return 1.0 - self.betas

    @property
    def alpha_bar(self) -> torch.Tensor:
        return torch.cumprod(self.alphas, dim=0)

    def alpha_bar_prev(self, final: float = 1.0) -> torch.Tensor:
        """alpha_bar[t-1] for each t, with ``final`` standing for alpha_bar[-1] (1.0 = x_0 exact)."""
        ab = self.alpha_bar
        return torch.cat([ab.new_tensor([final]), ab[:-1]])

    def posterior_variance(self) -> torch.Tensor:
        """beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t   (Ho et al. eq. 7)."""
        ab, ab_prev = self.alpha_bar, self.alpha_bar_prev()
        return (1 - ab_prev) / (1 - ab) * self.betas


def linear_schedule(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 2e-2) -> Schedule:
    """Linear betas from beta_start to beta_end over T steps (Ho et al. 2020, sec. 4)."""
    return Schedule(torch.linspace(beta_start, beta_end, T, dtype=torch.float64))


def scaled_linear_schedule(T: int = 1000, beta_start: float = 0.00085,
                           beta_end: float = 0.012) -> Schedule:
    """Latent-diffusion betas: linear in sqrt(beta) (Stable Diffusion v1)."""
    return Schedule(torch.linspace(beta_start ** 0.5, beta_end ** 0.5, T, dtype=torch.float64) ** 2)


def gather(v: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """v[t] shaped (B, 1, 1, ...) to broadcast against ``like``, in like's dtype and device."""
    out = v.to(like.device)[t.to(like.device)].to(like.dtype)
    return out.reshape(-1, *([1] * (like.ndim - 1)))


def q_sample(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor,
             noise: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps   (Ho et al. eq. 4)."""
    ab = gather(schedule.alpha_bar, t, x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def posterior_mean(schedule: Schedule, x0: torch.Tensor, x_t: torch.Tensor,
                   t: torch.Tensor) -> torch.Tensor:
    """mu_tilde_t(x_t, x_0)   (Ho et al. eq. 7)."""
    ab, ab_prev = gather(schedule.alpha_bar, t, x_t), gather(schedule.alpha_bar_prev(), t, x_t)
    beta = gather(schedule.betas, t, x_t)
    alpha = 1 - beta
    return (ab_prev.sqrt() * beta / (1 - ab)) * x0 + (alpha.sqrt() * (1 - ab_prev) / (1 - ab)) * x_t


def x0_from_eps(x_t: torch.Tensor, eps: torch.Tensor, alpha_bar_t) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)   (Ho et al. eq. 4 solved
    for x_0; Song et al. eq. 12's "predicted x_0"). ``alpha_bar_t``: a scalar tensor or one
    broadcast to x_t; the result is in x_t's dtype."""
    ab = torch.as_tensor(alpha_bar_t)
    return ((x_t - (1 - ab).sqrt() * eps) / ab.sqrt()).to(x_t.dtype)


def predict_x0(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor,
               eps: torch.Tensor) -> torch.Tensor:
    """x0_hat at integer time steps ``t`` (B,): :func:`x0_from_eps` with alpha_bar[t]."""
    return x0_from_eps(x_t, eps, gather(schedule.alpha_bar, t, x_t))

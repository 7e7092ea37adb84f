"""The DDPM training objective."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .schedule import Schedule, q_sample


def eps_loss(eps_model, schedule: Schedule, x0: torch.Tensor, *, t: torch.Tensor,
             noise: torch.Tensor, weight: torch.Tensor | None = None, **cond) -> torch.Tensor:
    """L_simple = E || eps - eps_theta(x_t, t) ||^2   (Ho et al. eq. 14); with ``weight`` (N,),
    each sample's squared error is weighted first (e.g. :func:`min_snr_weight`)."""
    pred = eps_model(q_sample(schedule, x0, t, noise), t, **cond).float()
    if weight is None:
        return F.mse_loss(pred, noise)
    err = (pred - noise.float()) ** 2
    return (weight.view(-1, *[1] * (err.dim() - 1)) * err).mean()


def min_snr_weight(schedule: Schedule, t: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-sample weight min(SNR_t, gamma) / SNR_t of the eps loss, SNR_t = alpha_bar / (1 -
    alpha_bar) (Min-SNR weighting, Hang et al. 2023, eq. 4 for eps prediction): low-noise steps,
    where the image is already decided and the loss is mostly a noise floor, weigh less."""
    ab = schedule.alpha_bar.to(t.device)[t]
    snr = ab / (1 - ab)
    return (snr.clamp(max=gamma) / snr).float()

"""The DDPM training objective."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .schedule import Schedule, q_sample


def eps_loss(eps_model, schedule: Schedule, x0: torch.Tensor, *, t: torch.Tensor,
             noise: torch.Tensor, **cond) -> torch.Tensor:
    """L_simple = E || eps - eps_theta(x_t, t) ||^2   (Ho et al. eq. 14)."""
    return F.mse_loss(eps_model(q_sample(schedule, x0, t, noise), t, **cond).float(), noise)

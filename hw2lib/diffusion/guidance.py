"""Classifier-free guidance (Ho & Salimans 2022) as a wrapper around an eps_model."""
from __future__ import annotations

import torch


def guided_eps(eps_c: torch.Tensor, eps_u: torch.Tensor, w: float) -> torch.Tensor:
    """eps_tilde = (1 + w) eps(x, t, c) - w eps(x, t, null)   (Ho & Salimans 2022, eq. 6)."""
    return (1 + w) * eps_c - w * eps_u


def classifier_free_guidance(eps_model, w: float, *, cond_key: str = "y", null_value):
    """eps = (1 + w) eps(x, t, c) - w eps(x, t, null), computed as one doubled batch.

    ``null_value``: the null label (an int), or a tensor broadcast to the condition's shape
    (e.g. the empty prompt's text embedding).

    ``w`` = 0 is the plain conditional model (one forward, no doubling). Ours is the paper's w;
    diffusers pipelines use guidance_scale s = 1 + w.
    """
    if w == 0:
        return eps_model

    def guided(x, t, **cond):
        c = cond[cond_key]
        null = (null_value.to(c).expand_as(c) if torch.is_tensor(null_value)
                else torch.full_like(c, null_value))
        both = {**cond, cond_key: torch.cat([c, null])}
        eps_c, eps_u = eps_model(torch.cat([x, x]), torch.cat([t, t]), **both).chunk(2)
        return guided_eps(eps_c, eps_u, w)

    return guided

"""Classifier-free guidance (Ho & Salimans 2022) as a wrapper around an eps_model."""
from __future__ import annotations

import torch


def classifier_free_guidance(eps_model, w: float, *, cond_key: str = "y", null_value: int):
    """eps = (1 + w) eps(x, t, c) - w eps(x, t, null), computed as one doubled batch.

    ``w`` = 0 is the plain conditional model (one forward, no doubling). Ours is the paper's w;
    diffusers pipelines use guidance_scale s = 1 + w.
    """
    if w == 0:
        return eps_model

    def guided(x, t, **cond):
        c = cond[cond_key]
        both = {**cond, cond_key: torch.cat([c, torch.full_like(c, null_value)])}
        eps_c, eps_u = eps_model(torch.cat([x, x]), torch.cat([t, t]), **both).chunk(2)
        return (1 + w) * eps_c - w * eps_u

    return guided

"""Grey images by construction: a 3-channel eps-model made exactly from a 1-channel one.

Data that are grey, x_0 = g 1 per pixel (1 = (1, 1, 1)), live on the line of the unit vector
u = 1 / sqrt(3): x_0 . u = sqrt(3) g and x_0 has no part orthogonal to u. Under the forward
process q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) of Ho et al. 2020 (eq. 4), write
eps = u (eps . u) + eps_perp and split x_t the same way (per pixel):

    x_t . u  = sqrt(abar_t) sqrt(3) g + sqrt(1 - abar_t) (eps . u),   eps . u ~ N(0, 1),
    x_perp   = x_t - u (x_t . u) = sqrt(1 - abar_t) eps_perp.

The orthogonal part of x_t is pure noise and fixes eps_perp exactly; it is independent of
(g, eps . u), so it says nothing about them. The minimum-MSE eps, the target of DDPM's L_simple
(Ho et al. 2020, eq. 14), is therefore

    E[eps | x_t] = u E[eps . u | x_t . u] + x_perp / sqrt(1 - abar_t)
                 = u e(x_t . u, t) + x_perp / sqrt(1 - abar_t),

with e the optimal eps of a 1-channel diffusion trained on y_0 = sqrt(3) g with standard
Gaussian noise (x_t . u has unit-variance noise). :func:`grey_eps` builds this 3-channel
eps-model from a 1-channel ``e``; :func:`grey_coordinate` turns grey 3-channel images into the
1-channel y_0 that ``e`` is trained on.

What DDIM (Song et al. 2021, eq. 12) then does: x0_hat = (x_t - sqrt(1 - abar_t) eps) /
sqrt(abar_t) has orthogonal part (x_perp - x_perp) / sqrt(abar_t) = 0, so every predicted
x_0 is exactly grey (and clamping acts on the three equal channels alike); x_perp itself is
carried to the next step scaled by sqrt(1 - abar_prev - sigma_t^2) / sqrt(1 - abar_t), plus
sigma_t z_perp. A grid that ends at abar = 1 therefore returns exactly grey images; one that
ends at abar_0 < 1 (the course's P2 convention) returns x_0 with a colour part of the noise
level sqrt(1 - abar_0) left in it, as any eps-model does, here 0.01 of the [-1, 1] range. A
sampler that reads abar at another step than the t the model is told (the course's "t-1"
convention) scales x_perp by the neighbouring step's noise level, so a colour part of that
size remains too.
"""
from __future__ import annotations

import math

import torch

from .schedule import Schedule, gather


def grey_coordinate(x: torch.Tensor) -> torch.Tensor:
    """x . u per pixel, u = (1, ..., 1) / sqrt(C): (N, C, H, W) -> (N, 1, H, W). For grey
    images x = g 1 this is sqrt(C) g, the y_0 a 1-channel model of :func:`grey_eps` learns."""
    return x.sum(1, keepdim=True) / math.sqrt(x.shape[1])


def grey_eps(eps_grey, schedule: Schedule):
    """``eps_model(x, t)`` on (N, C, H, W) from ``eps_grey(y, t)`` on (N, 1, H, W):
    u e(x . u, t) + x_perp / sqrt(1 - abar_t) (the module's derivation). ``schedule``: the one
    ``eps_grey`` was trained with (its abar_t gives the orthogonal part's noise scale)."""
    def eps_model(x, t, **cond):
        c = x.shape[1]
        y = grey_coordinate(x)
        u = 1 / math.sqrt(c)
        x_perp = x - u * y  # broadcast over the C channels
        sd = (1 - gather(schedule.alpha_bar, t, x)).sqrt()  # sqrt(1 - abar_t), (N, 1, 1, 1)
        return u * eps_grey(y, t, **cond) + x_perp / sd
    return eps_model

"""Interpolation between noises: spherical (slerp) and linear (lerp)."""
from __future__ import annotations

import torch


def slerp(x0: torch.Tensor, x1: torch.Tensor, alpha: float) -> torch.Tensor:
    """sin((1-a) theta)/sin(theta) x0 + sin(a theta)/sin(theta) x1,
    theta = arccos(<x0, x1> / (|x0| |x1|)) on the flattened tensors (Shoemake 1985; DDIM sec. 5.3).
    Falls back to lerp when x0 and x1 are (anti)parallel."""
    a, b = x0.flatten().double(), x1.flatten().double()
    cos = (a @ b / (a.norm() * b.norm())).clamp(-1, 1)
    theta = torch.arccos(cos)
    if theta.abs() < 1e-6 or (torch.pi - theta).abs() < 1e-6:
        return lerp(x0, x1, alpha)
    s = torch.sin(theta)
    out = torch.sin((1 - alpha) * theta) / s * a + torch.sin(alpha * theta) / s * b
    return out.reshape(x0.shape).to(x0.dtype)


def lerp(x0: torch.Tensor, x1: torch.Tensor, alpha: float) -> torch.Tensor:
    """(1 - alpha) x0 + alpha x1."""
    return (1 - alpha) * x0 + alpha * x1

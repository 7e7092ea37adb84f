"""Image conversions, one of each: model range [-1, 1] <-> uint8 pictures, [0, 1] <-> uint8,
and the course's per-image min-max normalisation. Models and figures both import from here.

Layouts: tensors are channels first (..., C, H, W); uint8 pictures are channels last
(..., H, W, 3). Rounding is torchvision's ``save_image``: floor(255 x + 0.5), clamped.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def unit_to_uint8(x01) -> np.ndarray:
    """[0, 1] -> uint8, channels last, rounded as torchvision's ``save_image`` (floor(255x + 0.5)).

    A torch tensor is channels first (..., C, H, W); a numpy float array is already channels last
    (..., H, W, C); a uint8 array is returned as is. One channel is repeated to three."""
    if hasattr(x01, "detach"):  # torch tensor, channels first
        x01 = x01.detach().float().cpu().movedim(-3, -1).numpy()
    a = np.asarray(x01)
    if a.dtype != np.uint8:
        a = np.floor(np.clip(a.astype(np.float32) * 255 + 0.5, 0, 255)).astype(np.uint8)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return a


def to_uint8(images) -> np.ndarray:
    """A torch tensor (..., C, H, W) in the model range [-1, 1] -> uint8 (..., H, W, 3).

    Numpy input is taken as already channels last: uint8 as is, floats in [0, 1]."""
    if hasattr(images, "detach"):
        images = (images.detach().float().cpu().clamp(-1, 1) + 1) / 2
    return unit_to_uint8(images)


def to_model_range(x_uint8) -> "torch.Tensor":
    """uint8 (N, H, W, 3) -> float tensor (N, 3, H, W) in [-1, 1]: the inverse of to_uint8."""
    import torch
    a = np.ascontiguousarray(x_uint8)
    return torch.from_numpy(a).permute(0, 3, 1, 2).float() / 127.5 - 1


def minmax(x: "torch.Tensor") -> "torch.Tensor":
    """Each image of (B, C, H, W) scaled to [0, 1] by its own min and max (the course's save)."""
    flat = x.flatten(1)
    lo, hi = flat.min(1).values.view(-1, 1, 1, 1), flat.max(1).values.view(-1, 1, 1, 1)
    return (x - lo) / (hi - lo).clamp_min(1e-12)

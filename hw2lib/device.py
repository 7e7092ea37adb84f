"""Where the networks run: ``"cpu"`` or ``"cuda"`` (``DEVICE=`` of the Makefile, ``device`` of the
notebooks, ``--device`` of the CLI). Noise is always drawn on the CPU from seeded generators and
then moved, so a seed gives the same noises on every device."""
from __future__ import annotations

import torch

from .errors import UserError


def resolve(device: str | torch.device = "cpu") -> torch.device:
    """The torch device for ``device``; a clear error when CUDA is asked for and absent."""
    try:
        d = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"device must be 'cpu' or 'cuda' (or 'cuda:N'), got {device!r}") from None
    if d.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {str(device)!r} asked for, but torch sees no CUDA GPU here "
                        "(torch.cuda.is_available() is False): use DEVICE=cpu")
    if d.type not in ("cpu", "cuda"):
        raise UserError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return d


def of(module: torch.nn.Module) -> torch.device:
    """The device a module's parameters live on."""
    return next(module.parameters()).device

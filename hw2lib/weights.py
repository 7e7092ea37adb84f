"""Weights on disk: safetensors state dicts (float16 by default), loaded strictly."""
from __future__ import annotations

from pathlib import Path

import torch

from .errors import InputError, MissingInputError
from .files import atomic_path, check_not_lfs_pointer


def save_weights(model: torch.nn.Module, path, *, half: bool = True) -> Path:
    """safetensors of the state dict (float16 when ``half``), written to a temporary name and
    moved into place."""
    from safetensors.torch import save_file
    sd = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
          for k, v in model.state_dict().items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(sd, str(tmp))
    return path


def read_safetensors(path) -> dict:
    """The tensors of a safetensors file; a missing, LFS-pointer or broken file raises an error
    naming it."""
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"checkpoint {path} not found (make checkpoints builds it)")
    check_not_lfs_pointer(path)
    try:
        return load_file(str(path))
    except Exception as e:  # noqa: BLE001 - SafetensorError, OSError, ...: all mean unreadable
        raise InputError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e}); "
                         "rebuild it (make checkpoints) or restore it from git") from e


def load_weights(model: torch.nn.Module, path) -> torch.nn.Module:
    """Load safetensors weights strictly (cast to the model's dtype)."""
    sd = read_safetensors(path)
    ref = model.state_dict()
    try:
        model.load_state_dict({k: v.to(ref[k].dtype) if k in ref else v for k, v in sd.items()},
                              strict=True)
    except RuntimeError as e:
        raise InputError(f"{path} does not fit the model: {e}") from e
    return model

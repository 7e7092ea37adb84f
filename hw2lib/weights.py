"""Weights on disk: safetensors state dicts (float16 by default), loaded strictly."""
from __future__ import annotations

from pathlib import Path

import torch


def save_weights(model: torch.nn.Module, path, *, half: bool = True) -> Path:
    """safetensors of the state dict (float16 when ``half``)."""
    from safetensors.torch import save_file
    sd = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
          for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(path))
    return path


def load_weights(model: torch.nn.Module, path) -> torch.nn.Module:
    """Load safetensors weights strictly (cast to the model's dtype)."""
    from safetensors.torch import load_file
    if not Path(path).exists():
        raise FileNotFoundError(f"checkpoint {path} not found (make checkpoints builds it)")
    sd = load_file(str(path))
    ref = model.state_dict()
    model.load_state_dict({k: v.to(ref[k].dtype) if k in ref else v for k, v in sd.items()},
                          strict=True)
    return model

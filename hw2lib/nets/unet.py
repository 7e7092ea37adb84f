"""UNets from diffusers' UNet2DModel, configured by a frozen dataclass saved with each checkpoint."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch


@dataclass(frozen=True)
class UNetConfig:
    """A diffusers UNet2DModel. Attention only at the two coarsest levels (14x14 and 7x7 for 28x28
    inputs); ``num_class_embeds`` includes the null label used for guidance dropout."""
    sample_size: int = 28
    in_channels: int = 3
    out_channels: int = 3
    block_out_channels: tuple[int, ...] = (64, 128, 128)
    down_block_types: tuple[str, ...] = ("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D")
    up_block_types: tuple[str, ...] = ("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D")
    layers_per_block: int = 2
    attention_head_dim: int = 32
    norm_num_groups: int = 32
    num_class_embeds: int | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        d = dict(d)
        for k in ("block_out_channels", "down_block_types", "up_block_types"):
            d[k] = tuple(d[k])
        return cls(**d)


def build_unet(cfg: UNetConfig):
    from diffusers import UNet2DModel
    kw = asdict(cfg)
    kw.pop("extra")
    return UNet2DModel(**kw)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def eps_fn(unet, *, autocast: bool = False, device_type: str = "cpu"):
    """``eps_model(x, t, y=None)`` over a UNet2DModel: the callable the samplers take.

    With ``autocast``, the network runs in bfloat16 autocast; its output is returned as float32.
    """
    def eps_model(x, t, y=None):
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
            return unet(x, t, class_labels=y).sample.float()
    return eps_model


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

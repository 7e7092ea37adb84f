"""Forward FLOPs of every network of a course run (torch's FlopCounterMode, 2 FLOPs per
multiply-add), counted on the meta device where the network allows it (nothing allocated), and
the work of each stage as forward passes, at the rehearsal's counts and at the course's."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch


def _count(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc:
        fn()
    return int(fc.get_total_flops())


def forward_flops(*, unet_module, sd_config, p1_unet_cfg, clip_model: str = "ViT-B-32",
                  sd_resolution: int = 512) -> dict[str, int]:
    """FLOPs of one forward pass (batch 1) of each network."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from ..nets.unet import build_unet
    out = {}
    spec = importlib.util.spec_from_file_location("rehearsal_unet_flops", unet_module)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    d = Path(sd_config)
    with torch.device("meta"):
        face = mod.UNet()
        out["face_unet"] = _count(lambda: face(torch.randn(1, 3, 256, 256), torch.tensor([500])))
        from ..nets.presets import P1_GPU_UNET
        for key, cfg in (("p1_unet", p1_unet_cfg), ("p1_gpu_unet", P1_GPU_UNET)):
            p1, s = build_unet(cfg), cfg.sample_size
            out[key] = _count(lambda: p1(torch.randn(1, 3, s, s), torch.tensor([500]),
                                         class_labels=torch.tensor([1])))
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(str(d / "unet")))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(str(d / "vae")))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(str(d / "text_encoder")))
        lat = sd_resolution // 2 ** (len(vae.config.block_out_channels) - 1)
        ctx = torch.randn(1, 77, text.config.hidden_size)
        out["sd_unet"] = _count(lambda: unet(torch.randn(1, 4, lat, lat), torch.tensor([10]),
                                             encoder_hidden_states=ctx))
        out["vae_encode"] = _count(lambda: vae.encode(torch.randn(1, 3, sd_resolution, sd_resolution)))
        out["vae_decode"] = _count(lambda: vae.decode(torch.randn(1, 4, lat, lat)))
        out["sd_text"] = _count(lambda: text(torch.zeros(1, 77, dtype=torch.long)))
    import open_clip  # open_clip moves its model to a device: counted on the CPU (cheap)
    clip = open_clip.create_model(clip_model, pretrained=None, force_quick_gelu=True).eval()
    with torch.inference_mode():
        out["clip_image"] = _count(lambda: clip.encode_image(torch.randn(1, 3, 224, 224)))
        out["clip_text"] = _count(lambda: clip.encode_text(torch.zeros(1, 77, dtype=torch.long)))
    return out


def total(work: dict[str, float], flops: dict[str, int]) -> float:
    """FLOPs of ``work`` ({network: forward passes; a training step counts 3 forwards})."""
    return float(sum(n * flops[k] for k, n in work.items()))


def save(path, flops: dict) -> Path:
    Path(path).write_text(json.dumps(flops, indent=1))
    return Path(path)

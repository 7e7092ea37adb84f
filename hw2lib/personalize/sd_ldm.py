"""Stable Diffusion v1.x in the original (CompVis/LDM) single-file layout, the layout of
``sd-v1-4.ckpt``: diffusers components -> the ``state_dict`` keys of the LDM checkpoint
(``model.diffusion_model.*``, ``first_stage_model.*``, ``cond_stage_model.transformer.*``).

This is the inverse of diffusers' single-file conversion (``convert_ldm_unet_checkpoint``,
``convert_ldm_vae_checkpoint``, ``convert_ldm_clip_checkpoint``), generalised to any number of
levels and layers per block so that a reduced config round-trips too; the tests check the round
trip through ``StableDiffusionPipeline.from_single_file``. Used to write checkpoints with random
weights in the course's file format (the rehearsal, the tests); never to convert real weights.
"""
from __future__ import annotations

import json
from pathlib import Path

# (LDM name, diffusers name), whole keys
_UNET_TOP = [("time_embed.0.", "time_embedding.linear_1."), ("time_embed.2.", "time_embedding.linear_2."),
             ("input_blocks.0.0.", "conv_in."), ("out.0.", "conv_norm_out."), ("out.2.", "conv_out.")]
# (LDM name, diffusers name) inside a ResBlock
_UNET_RESNET = [("in_layers.0.", "norm1."), ("in_layers.2.", "conv1."), ("out_layers.0.", "norm2."),
                ("out_layers.3.", "conv2."), ("emb_layers.1.", "time_emb_proj."),
                ("skip_connection.", "conv_shortcut.")]
_VAE_ATTN = [("norm.", "group_norm."), ("q.", "to_q."), ("k.", "to_k."), ("v.", "to_v."),
             ("proj_out.", "to_out.0.")]


def _unet_prefixes(cfg: dict) -> list[tuple[str, str]]:
    """(LDM prefix, diffusers prefix) of every block of a UNet2DConditionModel config."""
    n, L = len(cfg["block_out_channels"]), cfg["layers_per_block"]
    up_attn = ["CrossAttn" in t for t in cfg["up_block_types"]]
    out = [("middle_block.1.", "mid_block.attentions.0.")]
    out += [(f"middle_block.{2 * j}.", f"mid_block.resnets.{j}.") for j in range(2)]
    for i in range(n):
        for j in range(L):
            out.append((f"input_blocks.{1 + i * (L + 1) + j}.0.", f"down_blocks.{i}.resnets.{j}."))
            out.append((f"input_blocks.{1 + i * (L + 1) + j}.1.", f"down_blocks.{i}.attentions.{j}."))
        for j in range(L + 1):
            out.append((f"output_blocks.{i * (L + 1) + j}.0.", f"up_blocks.{i}.resnets.{j}."))
            out.append((f"output_blocks.{i * (L + 1) + j}.1.", f"up_blocks.{i}.attentions.{j}."))
        if i < n - 1:
            out.append((f"input_blocks.{(i + 1) * (L + 1)}.0.op.", f"down_blocks.{i}.downsamplers.0.conv."))
            out.append((f"output_blocks.{i * (L + 1) + L}.{2 if up_attn[i] else 1}.",
                        f"up_blocks.{i}.upsamplers.0."))
    return out


def _swap_prefix(key: str, pairs) -> tuple[str, str] | None:
    """(new prefix, rest) for the first (new, old) pair whose old prefix starts ``key``."""
    for new, old in pairs:
        if key.startswith(old):
            return new, key[len(old):]
    return None


def unet_to_ldm(state: dict, cfg: dict) -> dict:
    """diffusers UNet2DConditionModel state dict -> ``model.diffusion_model.*`` keys."""
    blocks = _unet_prefixes(cfg)
    out = {}
    for k, v in state.items():
        hit = _swap_prefix(k, _UNET_TOP)
        if hit is None:
            hit = _swap_prefix(k, blocks)
            if hit is None:
                raise KeyError(f"no LDM name for the UNet weight {k}")
            if ".resnets." in k:
                hit = (hit[0], "".join(_swap_prefix(hit[1], _UNET_RESNET) or ("", hit[1])))
        out["model.diffusion_model." + hit[0] + hit[1]] = v
    return out


def _vae_prefixes(cfg: dict) -> list[tuple[str, str]]:
    n, L = len(cfg["block_out_channels"]), cfg["layers_per_block"]
    out = []
    for part in ("encoder", "decoder"):
        out += [(f"{part}.mid.attn_1.", f"{part}.mid_block.attentions.0."),
                (f"{part}.norm_out.", f"{part}.conv_norm_out.")]
        out += [(f"{part}.mid.block_{j + 1}.", f"{part}.mid_block.resnets.{j}.") for j in range(2)]
    for i in range(n):
        out += [(f"encoder.down.{i}.block.{j}.", f"encoder.down_blocks.{i}.resnets.{j}.") for j in range(L)]
        out += [(f"decoder.up.{n - 1 - i}.block.{j}.", f"decoder.up_blocks.{i}.resnets.{j}.")
                for j in range(L + 1)]
        if i < n - 1:
            out.append((f"encoder.down.{i}.downsample.", f"encoder.down_blocks.{i}.downsamplers.0."))
            out.append((f"decoder.up.{n - 1 - i}.upsample.", f"decoder.up_blocks.{i}.upsamplers.0."))
    return out


def vae_to_ldm(state: dict, cfg: dict) -> dict:
    """diffusers AutoencoderKL state dict -> ``first_stage_model.*`` keys (the attention's
    linear layers become LDM's 1x1 convolutions)."""
    blocks = _vae_prefixes(cfg)
    out = {}
    for k, v in state.items():
        hit = _swap_prefix(k, blocks)
        if hit is None:
            hit = ("", k)  # encoder.conv_in, quant_conv, post_quant_conv, ...: same names
        new, rest = hit
        if ".resnets." in k:
            rest = rest.replace("conv_shortcut.", "nin_shortcut.")
        elif ".attentions." in k:
            new, rest = new + _swap_prefix(rest, _VAE_ATTN)[0], _swap_prefix(rest, _VAE_ATTN)[1]
            if rest == "weight" and v.ndim == 2 and not new.endswith("norm."):
                v = v[:, :, None, None]
        out["first_stage_model." + new + rest] = v
    return out


def text_encoder_to_ldm(state: dict) -> dict:
    """transformers CLIPTextModel state dict -> ``cond_stage_model.transformer.text_model.*``
    keys (transformers 5 names them without the ``text_model.`` that sd-v1-4.ckpt has)."""
    pre = "cond_stage_model.transformer."
    return {pre + (k if k.startswith("text_model.") else "text_model." + k): v
            for k, v in state.items()}


def random_components(config_dir, *, seed: int = 0, dtype=None) -> dict:
    """UNet, VAE and text encoder with random weights from the configs in ``config_dir``
    (``unet/config.json``, ``vae/config.json``, ``text_encoder/config.json``)."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    d = Path(config_dir)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(str(d / "unet")))
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(str(d / "vae")))
    text = CLIPTextModel(CLIPTextConfig.from_pretrained(str(d / "text_encoder")))
    comps = dict(unet=unet.eval(), vae=vae.eval(), text_encoder=text.eval())
    if dtype is not None:
        comps = {k: m.to(dtype) for k, m in comps.items()}
    return comps


def ldm_state_dict(comps: dict) -> dict:
    """The ``state_dict`` of an LDM checkpoint from diffusers/transformers components."""
    import torch
    sd = {}
    sd.update(unet_to_ldm(comps["unet"].state_dict(), dict(comps["unet"].config)))
    sd.update(vae_to_ldm(comps["vae"].state_dict(), dict(comps["vae"].config)))
    sd.update(text_encoder_to_ldm(comps["text_encoder"].state_dict()))
    # the LDM wrapper's schedule buffers, as sd-v1-4.ckpt holds them (scaled-linear betas)
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    abar = torch.cumprod(1 - betas, 0)
    sd.update({"betas": betas.float(), "alphas_cumprod": abar.float(),
               "alphas_cumprod_prev": torch.cat([torch.ones(1), abar[:-1].float()])})
    return sd


def write_ckpt(comps: dict, path, *, global_step: int = 0) -> Path:
    """A Lightning-style single-file checkpoint ``{"state_dict": ..., "global_step": ...}``."""
    import torch
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": ldm_state_dict(comps), "global_step": global_step}, path)
    return path


def write_reduced_configs(src, out, *, unet_channels=(32, 64), vae_channels=(32, 64),
                          text_hidden=32, text_layers=2) -> Path:
    """A copy of the config folder ``src`` with small widths (for tests): the same block types
    and layout rules as SD v1.x, two levels instead of four."""
    import shutil
    src, out = Path(src), Path(out)
    shutil.copytree(src, out, dirs_exist_ok=True)

    def edit(rel, **kw):
        p = out / rel
        cfg = json.loads(p.read_text())
        cfg.update(kw)
        p.write_text(json.dumps(cfg, indent=1))

    n = len(unet_channels)
    edit("unet/config.json", block_out_channels=list(unet_channels), sample_size=64,
         down_block_types=["CrossAttnDownBlock2D"] * (n - 1) + ["DownBlock2D"],
         up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * (n - 1), layers_per_block=1,
         cross_attention_dim=text_hidden, attention_head_dim=4, norm_num_groups=8)
    m = len(vae_channels)
    edit("vae/config.json", block_out_channels=list(vae_channels), sample_size=64 * 2 ** (m - 1),
         down_block_types=["DownEncoderBlock2D"] * m, up_block_types=["UpDecoderBlock2D"] * m,
         layers_per_block=1, norm_num_groups=8)
    edit("text_encoder/config.json", hidden_size=text_hidden, intermediate_size=2 * text_hidden,
         num_attention_heads=4, num_hidden_layers=text_layers, projection_dim=text_hidden)
    return out

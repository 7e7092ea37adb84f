"""The embedded text-to-image model of P3b: a pixel-space diffusers ``UNet2DConditionModel`` on
the 16x32 digit scenes of :mod:`.scenes`, conditioned on the token states of the embedded
CLIP's frozen text tower.

The text tower is converted to transformers' ``CLIPTextModel`` (a test checks the token states
equal open_clip's), and the tokenizer is CLIP's BPE rebuilt from open_clip's vocabulary, so the
loaded model (:class:`SceneModel`) is a :class:`~hw2lib.personalize.t2i.TextToImage` like
Stable Diffusion: textual inversion and sampling are the same code for both.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..diffusion import Schedule, linear_schedule
from ..images import to_model_range
from .scenes import SIZE, cell_attributes, draw_scenes, recoloured, to_cells
from .t2i import Latents, Sampling, freeze, text_embeddings

UNET_KW = dict(sample_size=SIZE, in_channels=3, out_channels=3, layers_per_block=1,
               block_out_channels=(32, 64, 96), norm_num_groups=16,
               down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
               up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
               # diffusers reads attention_head_dim as the number of heads: 2 heads of 32/48
               attention_head_dim=2, cross_attention_dim=64,  # cross-attention at 8x16, 4x8
               class_embed_type="projection", projection_class_embeddings_input_dim=64)

# the project's DDIM on the linear schedule: grid 980, ..., 0, alpha_bar = 1 after the last
# step, x0-hat clamped to [-1, 1]
SCENE_SAMPLING = Sampling(steps=50, w=3.0, steps_offset=0, set_alpha_to_one=True, clip_x0=True)


def hf_text_encoder(clip_model):
    """transformers ``CLIPTextModel`` with the weights of an open_clip model's text tower
    (token embedding, positions, pre-LN residual blocks, final LayerNorm; exact GELU)."""
    from transformers import CLIPTextConfig, CLIPTextModel
    m = clip_model
    blocks = m.transformer.resblocks
    width = m.token_embedding.weight.shape[1]
    cfg = CLIPTextConfig(vocab_size=m.token_embedding.num_embeddings, hidden_size=width,
                         intermediate_size=blocks[0].mlp.c_fc.out_features,
                         num_hidden_layers=len(blocks), num_attention_heads=blocks[0].attn.num_heads,
                         max_position_embeddings=m.positional_embedding.shape[0], hidden_act="gelu",
                         layer_norm_eps=m.ln_final.eps, bos_token_id=49406, eos_token_id=49407,
                         pad_token_id=49407, projection_dim=width)
    te = CLIPTextModel(cfg)
    sd = {"text_model.embeddings.token_embedding.weight": m.token_embedding.weight,
          "text_model.embeddings.position_embedding.weight": m.positional_embedding,
          "text_model.final_layer_norm.weight": m.ln_final.weight,
          "text_model.final_layer_norm.bias": m.ln_final.bias}
    for i, b in enumerate(blocks):
        p = f"text_model.encoder.layers.{i}."
        q, k, v = b.attn.in_proj_weight.chunk(3)
        qb, kb, vb = b.attn.in_proj_bias.chunk(3)
        sd.update({p + "self_attn.q_proj.weight": q, p + "self_attn.k_proj.weight": k,
                   p + "self_attn.v_proj.weight": v, p + "self_attn.q_proj.bias": qb,
                   p + "self_attn.k_proj.bias": kb, p + "self_attn.v_proj.bias": vb,
                   p + "self_attn.out_proj.weight": b.attn.out_proj.weight,
                   p + "self_attn.out_proj.bias": b.attn.out_proj.bias,
                   p + "layer_norm1.weight": b.ln_1.weight, p + "layer_norm1.bias": b.ln_1.bias,
                   p + "layer_norm2.weight": b.ln_2.weight, p + "layer_norm2.bias": b.ln_2.bias,
                   p + "mlp.fc1.weight": b.mlp.c_fc.weight, p + "mlp.fc1.bias": b.mlp.c_fc.bias,
                   p + "mlp.fc2.weight": b.mlp.c_proj.weight, p + "mlp.fc2.bias": b.mlp.c_proj.bias})
    if not any(k.startswith("text_model.") for k in te.state_dict()):  # newer transformers
        sd = {k.removeprefix("text_model."): v for k, v in sd.items()}
    missing, unexpected = te.load_state_dict({k: v.detach().float() for k, v in sd.items()},
                                             strict=False)
    missing = [k for k in missing if "position_ids" not in k]
    if missing or unexpected:
        raise RuntimeError(f"text tower conversion: missing {missing}, unexpected {unexpected}")
    return te.eval().requires_grad_(False)


def text_components(clip_ckpt) -> dict:
    """tokenizer + text encoder of the embedded CLIP (``clip_ckpt`` folder). The tokenizer is
    rebuilt from open_clip's vocabulary in a temporary folder: loading writes nothing next to
    the checkpoint."""
    from ..zeroshot.model import load_digit_clip
    from .tiny import clip_tokenizer
    te = hf_text_encoder(load_digit_clip(clip_ckpt).model)
    tok = clip_tokenizer()
    tok.model_max_length = te.config.max_position_embeddings
    return dict(text_encoder=te, tokenizer=tok)


class SceneUNet(torch.nn.Module):
    """The scene model's denoiser: a ``UNet2DConditionModel`` (``.unet``) that also gets the
    caption as a global vector, the mean of the token states, projected and added to the time
    embedding (diffusers' ``projection`` class embedding, as SD-XL adds its pooled text
    embedding). Cross-attention alone learned the digits too slowly here (after 626 steps the
    samples did not depend on the prompt); the global path is the one that made P1's class
    conditioning work. ``forward(x, t, ctx)`` returns the predicted noise."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, x, t, ctx):
        return self.unet(x, t, encoder_hidden_states=ctx, class_labels=ctx.mean(1)).sample


def new_unet(**over) -> SceneUNet:
    from diffusers import UNet2DConditionModel
    return SceneUNet(UNet2DConditionModel(**{**UNET_KW, **over}))


@dataclass
class SceneModel:
    """The trained scene model as a text-to-image model: pixel space (the latents are the
    scenes), the linear schedule (1e-4..0.02, T = 1000)."""
    net: SceneUNet
    text_encoder: torch.nn.Module
    tokenizer: object
    schedule: Schedule = field(default_factory=linear_schedule)
    sampling: Sampling = SCENE_SAMPLING

    def __post_init__(self):
        freeze(self.net, self.text_encoder)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        cfg = self.net.unet.config
        return (cfg.in_channels, *cfg.sample_size)

    def to(self, device) -> "SceneModel":
        self.net.to(device)
        self.text_encoder.to(device)
        return self

    def eps(self, x, t, ctx):
        return self.net(x, t, ctx).float()

    def to_latents(self, images) -> Latents:
        """The scenes themselves: float (N, 3, H, W) in [-1, 1] as they are, uint8 pictures
        (N, H, W, 3) converted."""
        x = images if torch.is_tensor(images) else to_model_range(np.asarray(images))
        return Latents(x.float())

    def from_latents(self, latents):
        return latents


def training_cells(sets: dict, *, recolour: float = 0.0, seed: int = 0):
    """The scene model's training cells: (cells float (N, 3, CELL, CELL), labels, attributes
    for the captions (:func:`~.scenes.cell_attributes`)). ``recolour`` > 0 adds that fraction
    of the cells again, recoloured in random two-colour schemes (:func:`~.scenes.recoloured`),
    their captions naming the drawn ink and paper colours."""
    images = np.concatenate([ds.x_train for ds in sets.values()])
    labels = np.concatenate([ds.y_train for ds in sets.values()])
    domains = [n for n, ds in sets.items() for _ in range(len(ds.y_train))]
    cells = to_cells(images)
    attrs = cell_attributes(cells, domains)
    if recolour > 0:
        extra, idx, extra_attrs = recoloured(cells, domains, recolour,
                                             torch.Generator().manual_seed(seed))
        cells = torch.cat([cells, extra])
        labels = np.concatenate([labels, labels[idx.numpy()]])
        attrs = attrs + extra_attrs
    return cells, labels, attrs


def colour_census(attrs) -> dict:
    """``{"<ink> on <paper>": number of cells}`` of :func:`training_cells`' attributes, commonest
    first."""
    from collections import Counter
    return dict(Counter(f"{a['ink']} on {a['paper']}" for a in attrs).most_common())


def train(sets: dict, clip_ckpt, out_dir, cfg, *, command: str = "", progress: bool = True,
          unet_kw: dict | None = None, recolour: float = 0.0, init=None) -> Path:
    """Train the scene UNet (eps loss, linear schedule T=1000, caption dropout ``p_uncond`` for
    guidance) on :func:`training_cells` (``recolour``: the share of recoloured copies); exports
    fp16 weights, config, loss curve and manifest to ``out_dir``. ``init``: a trained scene
    model's folder to start from (fine-tuning; its manifest is quoted in the new one)."""
    from ..diffusion import q_sample
    from ..train import export_checkpoint, fit
    out_dir = Path(out_dir)
    text = text_components(clip_ckpt)
    tok, te = text["tokenizer"], text["text_encoder"]
    cells, labels, attrs = training_cells(sets, recolour=recolour, seed=cfg.seed)
    n_images = sum(len(ds.y_train) for ds in sets.values())
    schedule = linear_schedule()
    unet = new_unet(**(unet_kw or {}))
    started_from = None
    if init:
        from ..files import read_json
        from ..weights import load_weights
        load_weights(unet, Path(init) / "model.safetensors")
        m = read_json(Path(init) / "manifest.json",
                      what="the manifest of the scene model to start from")
        started_from = {"folder": str(init), **{k: m.get(k) for k in (
            "command", "steps_done", "wall_seconds", "recolour", "commit", "made")}}

    def batch_loss(model, g):
        x0, caps = draw_scenes(cells, labels, cfg.batch_size, g, attrs=attrs)
        drop = torch.rand(len(caps), generator=g) < cfg.p_uncond
        caps = ["" if d else c for c, d in zip(caps, drop.tolist())]
        with torch.no_grad():
            ctx = text_embeddings(tok, te, caps)
        t = torch.randint(0, schedule.T, (len(caps),), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        pred = model(q_sample(schedule, x0, t, noise), t, ctx)
        return F.mse_loss(pred.float(), noise)

    res = fit(unet, batch_loss, cfg, out_dir / "state", progress=progress, desc="train t2i")
    weights = res.ema if cfg.ema_decay > 0 else res.model
    export_checkpoint(out_dir, res, cfg, module=weights, command=command, sets=sets,
                      config={"unet": {**UNET_KW, **(unet_kw or {})}, "clip_ckpt": str(clip_ckpt),
                              "schedule": "linear 1e-4..0.02, T=1000"},
                      unet_params=sum(p.numel() for p in unet.parameters()),
                      weights="ema" if cfg.ema_decay > 0 else "model", n_train_images=n_images,
                      recolour=recolour, n_train_cells=len(cells), init=started_from,
                      colour_census={"data": colour_census(attrs[:n_images]),
                                     "recoloured": colour_census(attrs[n_images:])})
    return out_dir


def load_scene_model(ckpt_dir, clip_ckpt=None) -> SceneModel:
    """The trained scene model of ``ckpt_dir`` with the text tower of ``clip_ckpt`` (default:
    the CLIP it was trained with, from its ``config.json``)."""
    from ..files import read_json
    from ..weights import load_weights
    ckpt_dir = Path(ckpt_dir)
    cfg = read_json(ckpt_dir / "config.json", what="the config of the embedded text-to-image model",
                    hint="train it first (python -m hw2lib train t2i)")
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg["unet"].items()}
    net = load_weights(new_unet(**kw), ckpt_dir / "model.safetensors")
    return SceneModel(net, **text_components(clip_ckpt or cfg["clip_ckpt"]))

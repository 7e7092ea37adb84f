"""The embedded text-to-image model of P3b: a pixel-space diffusers ``UNet2DConditionModel`` on
16x32 scenes of one or two digits ("a 3 next to a 7": 3 left, 7 right), conditioned on the token
states of the embedded CLIP's frozen text tower.

The text tower is converted to transformers' ``CLIPTextModel`` (a test checks the token states
equal open_clip's), and the tokenizer is CLIP's BPE rebuilt from open_clip's vocabulary, so
the model is a Stable-Diffusion-shaped component dict with ``vae=None``: textual inversion
(:mod:`.textual_inversion`) and sampling (:mod:`.generate`) are the same code in both modes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..clip.templates import DIGIT_WORDS
from ..images import to_model_range, to_uint8

CELL = 16  # a digit cell is CELL x CELL; a scene is two cells side by side
SIZE = (CELL, 2 * CELL)

UNET_KW = dict(sample_size=SIZE, in_channels=3, out_channels=3, layers_per_block=1,
               block_out_channels=(32, 64, 96), norm_num_groups=16,
               down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
               up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
               # diffusers reads attention_head_dim as the number of heads: 2 heads of 32/48
               attention_head_dim=2, cross_attention_dim=64,  # cross-attention at 8x16, 4x8
               class_embed_type="projection", projection_class_embeddings_input_dim=64)


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
    from ..clip import embedded as clip_embedded
    from .tiny import clip_tokenizer
    clip = clip_embedded.load(clip_ckpt)
    te = hf_text_encoder(clip.model)
    tok = clip_tokenizer()
    tok.model_max_length = te.config.max_position_embeddings
    return dict(text_encoder=te, tokenizer=tok)


class SceneUNet(torch.nn.Module):
    """A ``UNet2DConditionModel`` that also gets the caption as a global vector: the mean of the
    token states, projected and added to the time embedding (diffusers' ``projection`` class
    embedding, as SD-XL adds its pooled text embedding). Cross-attention alone learned the
    digits too slowly here (after 626 steps the samples did not depend on the prompt); the
    global path is the one that made P1's class conditioning work. Called like the UNet:
    ``(x, t, encoder_hidden_states=...)``."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    @property
    def config(self):
        return self.unet.config

    @property
    def dtype(self):
        return self.unet.dtype

    @property
    def device(self):
        return self.unet.device

    def forward(self, x, t, encoder_hidden_states, **kw):
        return self.unet(x, t, encoder_hidden_states=encoder_hidden_states,
                         class_labels=encoder_hidden_states.mean(1), **kw)


def new_unet(**over) -> SceneUNet:
    from diffusers import UNet2DConditionModel
    return SceneUNet(UNet2DConditionModel(**{**UNET_KW, **over}))


# --------------------------------------------------------------------------- scenes
def to_cells(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28, 3) -> float (N, 3, CELL, CELL) in [-1, 1] (antialiased resize)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return F.interpolate(x, size=(CELL, CELL), mode="bilinear", antialias=True, align_corners=False)


def blank_like(cells: torch.Tensor) -> torch.Tensor:
    """A cell without a digit: the mean colour of each cell's border, flat."""
    border = torch.cat([cells[..., 0, :], cells[..., -1, :], cells[..., :, 0], cells[..., :, -1]], -1)
    return border.mean(-1)[..., None, None].expand_as(cells).clone()


DOMAIN_WORD = {"mnistm": "handwritten", "svhn": "printed"}


def cell_attributes(cells: torch.Tensor, domains, iters: int = 8) -> list[dict]:
    """What a caption may say of each cell besides the digit: its domain word and the colours of
    ink and paper, named as the embedded CLIP's captions name colours. Ink and paper are the two
    clusters of a 2-means of the cell's pixel colours, started from the border's mean colour
    (paper) and the pixel farthest from it (ink)."""
    from ..clip.embedded import colour_word
    px = ((cells.float() + 1) / 2).flatten(2).transpose(1, 2)  # (N, H*W, 3) in [0, 1]
    paper = ((blank_like(cells.float()) + 1) / 2)[..., 0, 0]  # (N, 3)
    far = (px - paper[:, None]).norm(dim=-1).argmax(1)
    ink = px[torch.arange(len(px)), far]
    for _ in range(iters):
        is_ink = (px - ink[:, None]).norm(dim=-1) < (px - paper[:, None]).norm(dim=-1)
        w = is_ink[..., None].float()
        ink = (px * w).sum(1) / w.sum(1).clamp(min=1)
        paper = (px * (1 - w)).sum(1) / (1 - w).sum(1).clamp(min=1)
    return [dict(domain=DOMAIN_WORD.get(dm, dm), ink=colour_word(*i.tolist()),
                 paper=colour_word(*p.tolist()))
            for dm, i, p in zip(domains, ink, paper)]


def word(d: int, rng, attr: dict | None = None) -> str:
    """The digit as a word or a numeral with its article ("an eight", "a 3"); with ``attr``
    (:func:`cell_attributes`) sometimes its domain, ink and paper colours as well
    ("a handwritten yellow 3 on red")."""
    parts = [DIGIT_WORDS[d] if rng.random() < 0.5 else str(d)]
    if attr is not None:
        if rng.random() < 0.5:
            parts.insert(0, attr["ink"])
        if rng.random() < 0.3:
            parts.insert(0, attr["domain"])
        if rng.random() < 0.5:
            parts.append("on " + attr["paper"])
    return ("an " if parts[0] in ("eight", "8", "orange") else "a ") + " ".join(parts)


def scene_caption(left, right, rng, attrs=(None, None)) -> str:
    """Caption of a scene; ``None`` marks an empty cell. Left-to-right order is meaningful.
    ``attrs``: the cells' :func:`cell_attributes` (or ``None``: digits only)."""
    if left is not None and right is not None:
        a, b = word(left, rng, attrs[0]), word(right, rng, attrs[1])
        forms = (f"{a} next to {b}", f"{a} and {b}", f"{b} to the right of {a}")
        return str(forms[rng.integers(len(forms))])
    d, side, attr = (left, "left", attrs[0]) if left is not None else (right, "right", attrs[1])
    return word(d, rng, attr) + ("" if rng.random() < 0.5 else f" on the {side}")


def draw_scenes(cells: torch.Tensor, labels: np.ndarray, n: int, g: torch.Generator,
                p_single: float = 0.35, attrs: list | None = None):
    """``n`` random scenes (float (n, 3, CELL, 2 CELL)) and their captions; ``attrs`` (one
    :func:`cell_attributes` entry per cell) lets captions describe the cells."""
    rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=g)))
    idx = torch.randint(0, len(cells), (n, 2), generator=g).numpy()
    at = (lambda k: None) if attrs is None else attrs.__getitem__  # noqa: E731
    out, caps = [], []
    for i, j in idx:
        a, b = cells[i], cells[j]
        if rng.random() < p_single:
            if rng.random() < 0.5:
                out.append(torch.cat([a, blank_like(a)], -1))
                caps.append(scene_caption(int(labels[i]), None, rng, (at(i), None)))
            else:
                out.append(torch.cat([blank_like(a), a], -1))
                caps.append(scene_caption(None, int(labels[i]), rng, (None, at(i))))
        else:
            out.append(torch.cat([a, b], -1))
            caps.append(scene_caption(int(labels[i]), int(labels[j]), rng, (at(i), at(j))))
    return torch.stack(out), caps


def concept_canvases(images: np.ndarray) -> torch.Tensor:
    """Textual-inversion training images of a one-cell concept: each image in the left and in
    the right cell of a scene, the other cell blank (float (2N, 3, CELL, 2 CELL))."""
    c = to_cells(images)
    return torch.cat([torch.cat([c, blank_like(c)], -1), torch.cat([blank_like(c), c], -1)])


# --------------------------------------------------------------------------- training
def train(sets: dict, clip_ckpt, out_dir, cfg, *, command: str = "", progress: bool = True,
          unet_kw: dict | None = None) -> Path:
    """Train the scene UNet (eps loss, linear schedule T=1000, caption dropout ``p_uncond`` for
    guidance); exports fp16 weights, config, loss curve and manifest to ``out_dir``."""
    from ..diffusion import linear_schedule, q_sample
    from ..train import export_checkpoint, fit
    out_dir = Path(out_dir)
    text = text_components(clip_ckpt)
    tok, te = text["tokenizer"], text["text_encoder"]
    images = np.concatenate([ds.x_train for ds in sets.values()])
    labels = np.concatenate([ds.y_train for ds in sets.values()])
    cells = to_cells(images)
    attrs = cell_attributes(cells, [n for n, ds in sets.items() for _ in range(len(ds.y_train))])
    schedule = linear_schedule()
    unet = new_unet(**(unet_kw or {}))

    def batch_loss(model, g):
        x0, caps = draw_scenes(cells, labels, cfg.batch_size, g, attrs=attrs)
        drop = torch.rand(len(caps), generator=g) < cfg.p_uncond
        caps = ["" if d else c for c, d in zip(caps, drop.tolist())]
        with torch.no_grad():
            ids = tok(caps, padding="max_length", max_length=tok.model_max_length,
                      truncation=True, return_tensors="pt").input_ids
            ctx = te(ids)[0]
        t = torch.randint(0, schedule.T, (len(caps),), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        pred = model(q_sample(schedule, x0, t, noise), t, encoder_hidden_states=ctx).sample
        return F.mse_loss(pred.float(), noise)

    res = fit(unet, batch_loss, cfg, out_dir / "state", progress=progress, desc="train t2i")
    weights = res.ema if cfg.ema_decay > 0 else res.model
    export_checkpoint(out_dir, res, cfg, module=weights, command=command, sets=sets,
                      config={"unet": {**UNET_KW, **(unet_kw or {})}, "clip_ckpt": str(clip_ckpt),
                              "schedule": "linear 1e-4..0.02, T=1000"},
                      unet_params=sum(p.numel() for p in unet.parameters()),
                      weights="ema" if cfg.ema_decay > 0 else "model", n_train_images=len(images))
    return out_dir


def load(ckpt_dir, clip_ckpt=None) -> dict:
    """The component dict (unet, vae=None, text_encoder, tokenizer) of a trained scene model."""
    from ..weights import load_weights
    from ..files import read_json
    ckpt_dir = Path(ckpt_dir)
    cfg = read_json(ckpt_dir / "config.json", what="the config of the embedded text-to-image model",
                    hint="train it first (python -m hw2lib train t2i)")
    kw = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg["unet"].items()}
    unet = load_weights(new_unet(**kw), ckpt_dir / "model.safetensors").eval()
    text = text_components(clip_ckpt or cfg["clip_ckpt"])
    return dict(unet=unet.requires_grad_(False), vae=None, **text)


# --------------------------------------------------------------------------- new concepts


def _shifts(cell: torch.Tensor, n: int, rng) -> torch.Tensor:
    """``n`` views of one cell: shifted by up to 1 px and brightness-jittered by up to 8%."""
    out = []
    for k in range(n):
        dy, dx = (0, 0) if k == 0 else (int(rng.integers(-1, 2)), int(rng.integers(-1, 2)))
        v = torch.roll(cell, (dy, dx), (-2, -1))
        out.append(((v + 1) * float(rng.uniform(0.92, 1.08)) - 1).clamp(-1, 1))
    return torch.stack(out)


def _restyle(cells: torch.Tensor, ink=(0.98, 0.85, 0.10), paper=(0.10, 0.12, 0.45)) -> torch.Tensor:
    """Recolour cells to a fixed two-colour style: the digit (the minority tone) in ``ink``, the
    rest in ``paper`` (RGB in [0, 1])."""
    lum = cells.mean(1, keepdim=True)
    lo = lum.amin((-2, -1), keepdim=True)
    hi = lum.amax((-2, -1), keepdim=True)
    a = (lum - lo) / (hi - lo + 1e-6)
    flip = (a.mean((-2, -1), keepdim=True) > 0.5).float()  # digit darker than its plate
    a = flip * (1 - a) + (1 - flip) * a
    ink_t = torch.tensor(ink).view(1, 3, 1, 1) * 2 - 1
    paper_t = torch.tensor(paper).view(1, 3, 1, 1) * 2 - 1
    return a * ink_t + (1 - a) * paper_t


def new_concepts(sets: dict, *, n_images: int = 6, seed: int = 0) -> dict:
    """The two concepts, from held-out test images (never in the scene model's training data):

    * ``<new1>`` (object-like, init word "four"): one particular handwritten-on-photo 4, seen
      ``n_images`` times with 1-px shifts and brightness changes (like photos of one dog).
    * ``<new2>`` (style-like, init word "digit"): ``n_images`` different house-number digits
      recoloured yellow on navy blue (a colour scheme, whatever the digit: like a painting style).

    Returns ``{token: dict(init_word, kind, cells (N, 3, CELL, CELL) in [-1, 1])}``.
    """
    rng = np.random.default_rng(seed)
    m = sets["mnistm"]
    four = m.x_test[np.flatnonzero(m.y_test == 4)[0]]
    s = sets["svhn"]
    pick = [int(np.flatnonzero(s.y_test == d)[0]) for d in (0, 2, 3, 5, 7, 9, 1, 6)[:n_images]]
    return {"<new1>": dict(init_word="four", kind="object",
                           cells=_shifts(to_cells(four[None])[0], n_images, rng)),
            "<new2>": dict(init_word="digit", kind="style",
                           cells=_restyle(to_cells(s.x_test[pick])))}


def concept_specs(concepts: dict, num_vectors: int = 1):
    """:class:`ConceptSpec` per concept: the cells placed left and right in blank scenes, each
    captioned as the scene model's one-digit scenes are ("a {}" or "a {} on the left" for a
    concept in the left cell), so the token need not encode where the concept stands."""
    from .textual_inversion import ConceptSpec
    specs = []
    for token, c in concepts.items():
        n = len(c["cells"])
        side = [("a {}", "a {} on the left")] * n + [("a {}", "a {} on the right")] * n
        specs.append(ConceptSpec(token, c["init_word"], concept_canvases_from_cells(c["cells"]),
                                 c["kind"], image_prompts=tuple(side), num_vectors=num_vectors))
    return specs


def concept_canvases_from_cells(c: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.cat([c, blank_like(c)], -1), torch.cat([blank_like(c), c], -1)])


# --------------------------------------------------------------------------- sampling
SAMPLING = dict(steps=50, steps_offset=0, final_alpha_bar="one", clip_x0=True)


def generate(components: dict, prompts, *, noise: torch.Tensor, w: float = 3.0, **kw) -> np.ndarray:
    """uint8 scenes (N, CELL, 2 CELL, 3) for ``prompts`` with the project's DDIM (linear
    schedule, grid 980, ..., 0, x0-hat clamped) and classifier-free guidance."""
    from ..diffusion import linear_schedule
    from .generate import generate as _generate
    return _generate(components, prompts, noise=noise, w=w, schedule=linear_schedule(),
                     **{**SAMPLING, **kw})


@torch.inference_mode()
def generate_regions(components: dict, left_prompt: str, right_prompt: str, *, noise, w: float = 3.0,
                     steps: int = 50) -> np.ndarray:
    """Region-masked composition: at every step the guided noise prediction of ``left_prompt``
    is used on the left cell and that of ``right_prompt`` on the right cell (one shared
    unconditional prediction), so each prompt can only shape its own region."""
    from ..diffusion import ddim_sample, ddim_timesteps, linear_schedule
    from .generate import unet_eps
    from .textual_inversion import text_embeddings
    unet, te, tok = (components[k] for k in ("unet", "text_encoder", "tokenizer"))
    schedule = linear_schedule()
    ctx = text_embeddings(tok, te, ["", left_prompt, right_prompt])
    eps_model = unet_eps(unet)
    noise = noise.to(unet.device)
    mask = torch.zeros(1, 1, *noise.shape[-2:], device=noise.device)
    mask[..., : noise.shape[-1] // 2] = 1

    def eps(x, t):
        n = len(x)
        e = eps_model(torch.cat([x] * 3), torch.as_tensor(t).expand(3 * n) if torch.as_tensor(t).ndim == 0
                      else torch.cat([t] * 3), ctx.repeat_interleave(n, 0))
        e_null, e_left, e_right = e.chunk(3)
        # classifier-free guidance per region (Ho & Salimans 2022, eq. 6)
        guided_left = (1 + w) * e_left - w * e_null
        guided_right = (1 + w) * e_right - w * e_null
        return mask * guided_left + (1 - mask) * guided_right

    x = ddim_sample(eps, schedule, timesteps=ddim_timesteps(schedule.T, steps), noise=noise,
                    clip_x0=True).sample
    return to_uint8(x)


# --------------------------------------------------------------------------- scoring
@torch.no_grad()
def cell_embeddings(clip, cells: torch.Tensor) -> torch.Tensor:
    """Normalised embedded-CLIP image embeddings of cells (float (N, 3, CELL, CELL) in [-1, 1])."""
    from ..clip.embedded import to_clip_tensor
    x = F.interpolate(cells, size=(28, 28), mode="bilinear", align_corners=False)
    u8 = to_uint8(x)
    pcfg = clip.model.visual.preprocess_cfg
    feats = clip.model.encode_image(to_clip_tensor(u8, pcfg["mean"], pcfg["std"]))
    return F.normalize(feats.float(), dim=-1)


def scenes_to_cells(scenes_u8: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 scenes (N, CELL, 2 CELL, 3) -> (left cells, right cells), float in [-1, 1]."""
    x = to_model_range(scenes_u8)
    return x[..., :CELL], x[..., CELL:]


def region_scores(clip, scenes_u8: np.ndarray, refs: dict) -> dict:
    """Per image: 100 x cosine of the left and right cells with each concept's mean reference
    embedding, and whether both concepts are where the prompt put them (the left cell nearer
    to ``<new1>``'s references than to ``<new2>``'s and the right cell the other way round)."""
    names = list(refs)
    centre = torch.stack([F.normalize(cell_embeddings(clip, refs[n]).mean(0), dim=0) for n in names])
    left, right = scenes_to_cells(scenes_u8)
    sl = 100 * cell_embeddings(clip, left) @ centre.T  # (N, 2)
    sr = 100 * cell_embeddings(clip, right) @ centre.T
    both = (sl[:, 0] > sl[:, 1]) & (sr[:, 1] > sr[:, 0])
    return {"left_vs_" + names[0]: sl[:, 0].numpy(), "right_vs_" + names[1]: sr[:, 1].numpy(),
            "both_present": both.numpy()}


def concept_scores(clip, images_u8: np.ndarray, ref_cells: torch.Tensor) -> np.ndarray:
    """Image score of whole generations of a one-concept prompt: 100 x cosine between the
    cell that holds the digit (the cell farther from a flat blank) and the mean reference."""
    centre = F.normalize(cell_embeddings(clip, ref_cells).mean(0), dim=0)
    left, right = scenes_to_cells(images_u8)
    busy = lambda c: c.std((-3, -2, -1))  # noqa: E731  (a blank cell is flat)
    cells = torch.where((busy(left) >= busy(right))[:, None, None, None], left, right)
    return (100 * cell_embeddings(clip, cells) @ centre).numpy()


# --------------------------------------------------------------------------- textual inversion
def train_concepts(t2i_ckpt, sets: dict, out_dir, cfg, *, command: str = "",
                   progress: bool = True, snr_gamma: float | None = None,
                   guidance: float = 0.0, t_min: int = 0, num_vectors: int = 1,
                   relative: bool = False) -> Path:
    """Textual inversion of :func:`new_concepts` on the frozen scene model (both tokens in one
    run, each batch mixing them). Writes ``learned_embeds/``, ``references.safetensors`` (the
    concepts' reference cells), ``loss.json`` and ``manifest.json`` to ``out_dir``."""
    from safetensors.torch import save_file

    from ..diffusion import linear_schedule
    from .textual_inversion import train as ti_train
    comps = load(t2i_ckpt)
    concepts = new_concepts(sets)
    out = ti_train(comps, concept_specs(concepts, num_vectors), cfg, out_dir, schedule=linear_schedule(),
                   progress=progress, command=command, snr_gamma=snr_gamma,
                   guidance=guidance, t_min=t_min, relative=relative)
    save_file({t: c["cells"].contiguous() for t, c in concepts.items()},
              str(Path(out) / "references.safetensors"))
    return out


def load_concepts(components: dict, ti_dir) -> dict:
    """Load the learned tokens into ``components``; returns ``{token: reference cells}``."""
    from safetensors.torch import load_file

    from .textual_inversion import load_embeddings_into
    ti_dir = Path(ti_dir)
    refs = ti_dir / "references.safetensors"
    if not refs.exists():
        raise FileNotFoundError(f"{refs} not found: learn the concepts first "
                                "(python -m hw2lib train ti)")
    load_embeddings_into(components, ti_dir / "learned_embeds")
    return load_file(str(refs))

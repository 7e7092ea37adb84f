"""Textual inversion (Gal et al. 2023): learn the input embedding of a new token ``<new1>`` so
that a frozen text-to-image diffusion model draws a concept from a few images of it.

Only the new tokens' rows are trained. Instead of training the whole embedding table and
restoring every other row after each optimiser step (diffusers' example script), the table is
wrapped: the new rows are the only parameter, and other rows cannot receive a gradient, so
they stay bit-identical by construction (a test checks it).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .t2i import TextToImage, encode_prompts

# Prompt templates of the textual-inversion paper / diffusers' example script (a subset).
OBJECT_TEMPLATES = (
    "a photo of a {}", "a rendering of a {}", "a cropped photo of the {}", "the photo of a {}",
    "a photo of a clean {}", "a photo of a dirty {}", "a dark photo of the {}", "a photo of my {}",
    "a bright photo of the {}", "a good photo of the {}", "a close-up photo of a {}",
    "a photo of one {}", "a rendition of the {}", "a photo of the nice {}", "a good photo of a {}",
)
STYLE_TEMPLATES = (
    "a painting in the style of {}", "a rendering in the style of {}",
    "a cropped painting in the style of {}", "the painting in the style of {}",
    "a clean painting in the style of {}", "a dark painting in the style of {}",
    "a picture in the style of {}", "a cool painting in the style of {}",
    "a close-up painting in the style of {}", "a bright painting in the style of {}",
    "a good painting in the style of {}", "a weird painting in the style of {}",
)


@dataclass(frozen=True)
class ConceptSpec:
    token: str  # e.g. "<new1>"
    init_word: str  # e.g. "dog": the new row starts as this word's embedding
    # what the model's ``to_latents`` takes: uint8 pictures (N, H, W, 3) or a list of them for
    # Stable Diffusion; float scenes (N, 3, H, W) in [-1, 1] (or uint8) for the scene model
    images: object
    kind: str = "object"  # "object" | "style": which prompt templates
    prompts: tuple = ()  # templates to use instead of the object/style ones
    # per image, the templates that describe it (e.g. where the concept is); overrides the
    # above. Index i % N, so mirrored copies (Stable Diffusion's) share their original's.
    image_prompts: tuple = ()
    # vectors per token (diffusers' multi-vector format): the token stands for itself and
    # ``<new1>_1`` ... ``<new1>_{n-1}``, all initialised from the init word
    num_vectors: int = 1

    def vector_tokens(self) -> list[str]:
        return [self.token] + [f"{self.token}_{i}" for i in range(1, self.num_vectors)]

    def templates(self):
        if self.prompts:
            return self.prompts
        return STYLE_TEMPLATES if self.kind == "style" else OBJECT_TEMPLATES


class PlaceholderEmbedding(torch.nn.Module):
    """A token-embedding table whose rows ``ids`` come from a trainable parameter and all other
    rows from the frozen original table (held outside the module's state)."""

    def __init__(self, base: torch.nn.Embedding, ids):
        super().__init__()
        object.__setattr__(self, "base", base)  # not a submodule: frozen, not saved with us
        ids = torch.as_tensor(ids, dtype=torch.long)
        self.register_buffer("ids", ids)
        self.rows = torch.nn.Parameter(base.weight.detach()[ids].clone().float())
        lut = torch.full((base.num_embeddings,), -1, dtype=torch.long)
        lut[ids] = torch.arange(len(ids))
        self.register_buffer("lut", lut, persistent=False)

    @property
    def weight(self):  # what transformers reads for dtype/device
        return self.base.weight

    def forward(self, input_ids):
        out = F.embedding(input_ids, self.base.weight)
        k = self.lut[input_ids]
        mask = k >= 0
        if not mask.any():
            return out
        out = out.clone()
        out[mask] = self.rows[k[mask]].to(out.dtype)
        return out

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the learned rows into the base table (for generation and saving)."""
        self.base.weight[self.ids] = self.rows.to(self.base.weight.dtype)


def add_placeholder_tokens(tokenizer, text_encoder, concepts) -> list[int]:
    """Add each concept's token(s) to the tokenizer, grow the embedding table, and initialise
    every new row from the concept's init word (mean of its sub-word embeddings). Returns the
    new rows' ids, concept by concept (``num_vectors`` each)."""
    tokens = [t for c in concepts for t in c.vector_tokens()]
    if tokenizer.add_tokens(tokens) != len(tokens):
        raise ValueError(f"some of {tokens} already exist in the tokenizer")
    text_encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    ids = tokenizer.convert_tokens_to_ids(tokens)
    table = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        for c in concepts:
            init = tokenizer(c.init_word, add_special_tokens=False).input_ids
            if not init:
                raise ValueError(f"init word {c.init_word!r} has no tokens")
            for t in c.vector_tokens():
                table[tokenizer.convert_tokens_to_ids(t)] = table[init].mean(0)
    return ids


def install(model: TextToImage, concepts):
    """Add the concepts' tokens to ``model`` (frozen) and wrap its embedding table; returns
    (PlaceholderEmbedding, per-concept training :class:`~hw2lib.personalize.t2i.Latents`)."""
    te = model.text_encoder
    ids = add_placeholder_tokens(model.tokenizer, te, concepts)
    emb = PlaceholderEmbedding(te.get_input_embeddings(), ids)
    te.set_input_embeddings(emb)
    return emb, [model.to_latents(c.images) for c in concepts]


def uninstall(model: TextToImage, emb: PlaceholderEmbedding) -> None:
    """Write the learned rows into the plain table and put the table back."""
    emb.write_back()
    model.text_encoder.set_input_embeddings(emb.base)


def make_batch_loss(model: TextToImage, concepts, latents, *, batch_size: int,
                    snr_gamma: float | None = None, target_w: float = 0.0, t_min: int = 0,
                    relative: bool = False):
    """``batch_loss(net, g)`` for :func:`hw2lib.train.fit`: a batch of (concept latent,
    templated prompt with the concept's token), eps loss (Ho et al. eq. 14) on the latents,
    Min-SNR weighted when ``snr_gamma`` is given. ``target_w`` > 0 (a loss setting, not the
    sampling guidance) takes the loss on the guided prediction (1 + w) eps(x_t, c) - w eps(x_t,
    null) with w = ``target_w``. ``t_min`` > 0 draws t from [t_min, T) only: the noisy steps,
    where colour and layout are decided. ``relative``: each sample's loss is divided by that of
    the unconditional prediction on the same x_t (no gradient), so every t counts by how much
    the caption helps there rather than by the size of its loss (the eps loss at t < 100 is ~70
    times that at t > 700)."""
    from ..diffusion import classifier_free_guidance, min_snr_weight, q_sample
    schedule = model.schedule

    def batch_loss(net, g):
        which = torch.randint(0, len(concepts), (batch_size,), generator=g).tolist()
        x0s, prompts = [], []
        for k in which:
            i = int(torch.randint(0, len(latents[k]), (1,), generator=g))
            x0s.append(latents[k].sample(i, g))
            c = concepts[k]
            temps = c.image_prompts[i % len(c.image_prompts)] if c.image_prompts else c.templates()
            prompts.append(temps[int(torch.randint(0, len(temps), (1,), generator=g))]
                           .format(concepts[k].token))
        x0 = torch.stack(x0s)
        t = torch.randint(t_min, schedule.T, (batch_size,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        ctx = encode_prompts(model, prompts)
        x_t = q_sample(schedule, x0, t, noise)
        null = encode_prompts(model, [""]) if target_w or relative else None
        pred = classifier_free_guidance(model.eps, target_w, cond_key="ctx",
                                        null_value=null)(x_t, t, ctx=ctx)
        if snr_gamma is None and not relative:
            return F.mse_loss(pred.float(), noise)
        dims = tuple(range(1, x0.ndim))
        per_sample = F.mse_loss(pred.float(), noise, reduction="none").mean(dims)
        if relative:
            with torch.no_grad():  # the null prompt does not depend on the learned rows
                pred_null = model.eps(x_t, t, null.expand_as(ctx))
            per_sample = per_sample / F.mse_loss(pred_null.float(), noise, reduction="none").mean(dims)
        if snr_gamma is not None:
            per_sample = min_snr_weight(schedule, t, snr_gamma) * per_sample
        return per_sample.mean()

    return batch_loss


def train(model: TextToImage, concepts, cfg, out_dir, *, progress: bool = True, command: str = "",
          snr_gamma: float | None = None, target_w: float = 0.0, t_min: int = 0,
          relative: bool = False) -> Path:
    """Learn one embedding per concept, everything else frozen; resumable (:func:`fit`).
    Writes ``<out>/learned_embeds/<name>.safetensors`` (diffusers' format, one token per file,
    loadable with ``pipe.load_textual_inversion``), ``loss.json`` and ``manifest.json``; the
    learned rows stay in ``model``'s text encoder, ready for generation."""
    from ..train import export_checkpoint, fit
    emb, latents = install(model, concepts)
    loss = make_batch_loss(model, concepts, latents, batch_size=cfg.batch_size,
                           snr_gamma=snr_gamma, target_w=target_w, t_min=t_min, relative=relative)
    res = fit(emb, loss, cfg, Path(out_dir) / "state", progress=progress, desc="textual inversion")
    uninstall(model, emb)
    out = Path(out_dir)
    rows, k = {}, 0
    for c in concepts:
        rows[c.token] = emb.rows[k:k + c.num_vectors].detach()
        k += c.num_vectors
    paths = save_embeddings(out / "learned_embeds", rows)
    export_checkpoint(out, res, cfg, command=command, snr_gamma=snr_gamma, target_w=target_w,
                      t_min=t_min, relative=relative,
                      concepts=[{"token": c.token, "init_word": c.init_word, "kind": c.kind,
                                 "num_vectors": c.num_vectors, "n_images": len(c.images)}
                                for c in concepts],
                      files=[p.name for p in paths])
    return out


def token_file_name(token: str) -> str:
    return "".join(ch for ch in token if ch.isalnum() or ch in "-_") or "token"


def save_embeddings(folder, rows: dict) -> list[Path]:
    """One ``{token: tensor}`` safetensors file per token (diffusers' format): (D,) for one
    vector, (n, D) for a multi-vector token."""
    from safetensors.torch import save_file
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for token, row in rows.items():
        p = folder / f"{token_file_name(token)}.safetensors"
        row = row.detach().float().cpu()
        save_file({token: (row[0] if row.ndim == 2 and len(row) == 1 else row).contiguous()}, str(p))
        paths.append(p)
    return paths


def load_embeddings(model: TextToImage, folder) -> list[str]:
    """Add every learned token of ``folder`` (:func:`save_embeddings`' files) to ``model``'s
    tokenizer and text encoder, as ``pipe.load_textual_inversion`` does for a diffusers
    pipeline (a multi-vector token as ``<new1>``, ``<new1>_1``, ...); returns the tokens."""
    from safetensors.torch import load_file
    tok, te = model.tokenizer, model.text_encoder
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no learned embeddings (*.safetensors) in {folder}")
    rows = dict(kv for p in files for kv in load_file(str(p)).items())
    vectors = {}  # multi-vector tokens as diffusers names them: <new1>, <new1>_1, ...
    for token, row in rows.items():
        row = row.reshape(-1, row.shape[-1])
        vectors.update({token if i == 0 else f"{token}_{i}": r for i, r in enumerate(row)})
    tok.add_tokens([t for t in vectors if t not in tok.get_vocab()])
    te.resize_token_embeddings(len(tok), mean_resizing=False)
    table = te.get_input_embeddings().weight
    with torch.no_grad():
        for token, row in vectors.items():
            table[tok.convert_tokens_to_ids(token)] = row.to(table.dtype)
    return list(rows)

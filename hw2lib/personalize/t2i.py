"""The text-to-image protocol: what textual inversion (:mod:`.textual_inversion`) and generation
(:mod:`.compose`) need of a frozen text-conditioned diffusion model, and nothing else.

Two models implement it: Stable Diffusion (:class:`hw2lib.personalize.sd.StableDiffusion`, a
latent model with a VAE) and the embedded scene model
(:class:`hw2lib.personalize.scene_model.SceneModel`, in pixel space). Code written against
:class:`TextToImage` never asks which one it has.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from ..diffusion import Schedule


@dataclass(frozen=True)
class Sampling:
    """A model's default DDIM settings: ``steps`` on the grid ``ddim_timesteps(T, steps,
    offset=steps_offset)``; the step after the last one goes to alpha_bar = 1
    (``set_alpha_to_one``, diffusers' name) or to alpha_bar[0]; ``clip_x0`` clamps x0-hat to
    [-1, 1]; ``w`` is the classifier-free guidance weight (diffusers' scale = 1 + w)."""
    steps: int
    w: float
    steps_offset: int
    set_alpha_to_one: bool
    clip_x0: bool


@dataclass(frozen=True)
class Latents:
    """The training inputs of a concept's images in a model's latent space: a diagonal Gaussian
    per image (a VAE posterior: ``mean`` and ``std``), or the points ``mean`` themselves when
    the model works on the images directly (``std`` None: nothing to sample)."""
    mean: torch.Tensor
    std: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.mean)

    def sample(self, i: int, generator: torch.Generator) -> torch.Tensor:
        if self.std is None:
            return self.mean[i]
        return self.mean[i] + self.std[i] * torch.randn(self.mean[i].shape, generator=generator)


@runtime_checkable
class TextToImage(Protocol):
    """A frozen text-to-image diffusion model, for textual inversion and sampling."""
    tokenizer: Any  # transformers' CLIPTokenizer
    text_encoder: Any  # transformers' CLIPTextModel: token ids -> token states ``ctx``
    schedule: Schedule  # the noise schedule the model was trained with
    sampling: Sampling  # its default DDIM settings
    latent_shape: tuple[int, int, int]  # (C, H, W) of one sample's latent (the initial noise)

    @property
    def device(self) -> torch.device: ...

    def eps(self, x: torch.Tensor, t: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """The predicted noise (float32) of latents ``x`` at steps ``t`` given token states."""

    def to_latents(self, images) -> Latents:
        """The training latents of a concept's images (see :class:`Latents`)."""

    def from_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, H, W) in [-1, 1] of sampled latents."""


def expand_prompt(tokenizer, prompt: str) -> str:
    """Spell out multi-vector tokens: "a <new1>" -> "a <new1> <new1>_1 <new1>_2" when the
    tokenizer holds ``<new1>_1`` and ``<new1>_2`` (diffusers' ``maybe_convert_prompt``)."""
    added = getattr(tokenizer, "added_tokens_encoder", None)
    if not added:  # nothing added (or a stand-in tokenizer): nothing to spell out
        return prompt
    for token in dict.fromkeys(tokenizer.tokenize(prompt)):
        if token in added and f"{token}_1" in added:
            i, replacement = 1, token
            while f"{token}_{i}" in added:
                replacement += f" {token}_{i}"
                i += 1
            prompt = prompt.replace(token, replacement)
    return prompt


def text_embeddings(tokenizer, text_encoder, prompts) -> torch.Tensor:
    """Token states (N, L, D) of ``prompts``, padded to the tokenizer's length, multi-vector
    tokens spelled out."""
    prompts = [expand_prompt(tokenizer, p) for p in prompts]
    ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids
    return text_encoder(ids.to(text_encoder.device))[0]


def encode_prompts(model: TextToImage, prompts) -> torch.Tensor:
    """:func:`text_embeddings` with ``model``'s tokenizer and text encoder."""
    return text_embeddings(model.tokenizer, model.text_encoder, prompts)


def freeze(*modules) -> None:
    """No gradients and eval mode for every module: the models here are only ever frozen."""
    for m in modules:
        m.requires_grad_(False).eval()

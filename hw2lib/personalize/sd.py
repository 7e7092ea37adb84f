"""Stable Diffusion as a :class:`~hw2lib.personalize.t2i.TextToImage` model, loaded from local
files only (never downloaded), and the course's concepts as textual-inversion specs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..diffusion import Schedule, scaled_linear_schedule
from ..errors import MissingInputError
from .t2i import Latents, Sampling, freeze

# Stable Diffusion's DDIM setup (the course's): grid 981, 961, ..., 1 (leading spacing, offset
# 1), the step after the last one at alpha_bar[0] (set_alpha_to_one off), no x0 clamp.
SD_SAMPLING = Sampling(steps=50, w=6.5, steps_offset=1, set_alpha_to_one=False, clip_x0=False)
LATENT_SCALE = 0.18215  # the SD v1 VAE's scaling factor


class MissingModelError(MissingInputError):
    pass


def check_sd(path, config_dir=None) -> None:
    """Raise :class:`MissingModelError` unless ``path`` is a diffusers pipeline folder, or a
    single-file checkpoint with ``config_dir`` (cheap: nothing is loaded)."""
    path = Path(path) if path else None
    if path is None or not path.exists():
        raise MissingModelError(
            f"Stable Diffusion not found at {path}: give a diffusers folder (with model_index.json) "
            "or the single file sd-v1-4.ckpt plus --sd-config DIR (a local diffusers folder with "
            "the configs of stable-diffusion-v1-4). Nothing is downloaded.")
    if path.is_dir():
        if not (path / "model_index.json").exists():
            raise MissingModelError(f"{path} is a folder without model_index.json (not a diffusers "
                                    "pipeline folder)")
    elif config_dir is None or not (Path(config_dir) / "model_index.json").exists():
        raise MissingModelError(
            f"{path} is a single-file checkpoint: also give --sd-config DIR, a local diffusers "
            "folder with stable-diffusion-v1-4's configs (model_index.json, unet/config.json, "
            "...); diffusers would otherwise fetch them from the hub")


def _images_tensor(images, size: int) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, size, size) in [-1, 1] (centre crop, bicubic)."""
    from PIL import Image
    out = []
    for img in images:
        im = Image.fromarray(img).convert("RGB")
        s = min(im.size)
        left, top = (im.size[0] - s) // 2, (im.size[1] - s) // 2
        im = im.crop((left, top, left + s, top + s)).resize((size, size), Image.BICUBIC)
        out.append(torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 127.5 - 1)
    return torch.stack(out)


@dataclass
class StableDiffusion:
    """Stable Diffusion's UNet, VAE, text encoder and tokenizer as a text-to-image model:
    sampling runs in the VAE's latent space (scaled by ``latent_scale``); concept images are
    centre-cropped, resized to ``resolution`` (default: the model's, 512 for v1.4) and encoded
    with their mirror images."""
    unet: torch.nn.Module
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    latent_scale: float = LATENT_SCALE
    resolution: int | None = None
    schedule: Schedule = field(default_factory=scaled_linear_schedule)
    sampling: Sampling = SD_SAMPLING

    def __post_init__(self):
        freeze(self.unet, self.vae, self.text_encoder)

    @classmethod
    def from_components(cls, components: dict, **kw) -> "StableDiffusion":
        """From a pipeline's component dict (``pipe.components``; other keys are ignored)."""
        return cls(*(components[k] for k in ("unet", "vae", "text_encoder", "tokenizer")), **kw)

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        size = self.unet.config.sample_size
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        return (self.unet.config.in_channels, h, w)

    def eps(self, x, t, ctx):
        dtype = self.unet.dtype
        return self.unet(x.to(dtype), t, encoder_hidden_states=ctx.to(dtype)).sample.float()

    @torch.no_grad()
    def to_latents(self, images) -> Latents:
        """The VAE posterior (mean, std) of each image times the latent scale, the mirrored
        images appended (the second half of the batch)."""
        vae = self.vae
        size = self.resolution or self.unet.config.sample_size * 2 ** (
            len(vae.config.block_out_channels) - 1)
        x = _images_tensor(images, size)
        x = torch.cat([x, x.flip(-1)])
        dist = vae.encode(x.to(vae.device, vae.dtype)).latent_dist
        return Latents(dist.mean.float().cpu() * self.latent_scale,
                       dist.std.float().cpu() * self.latent_scale)

    def from_latents(self, latents):
        return self.vae.decode((latents / self.latent_scale).to(self.vae.dtype)).sample.float()


def load_sd(path, *, config_dir=None, dtype=None, device: str = "cpu",
            resolution: int | None = None) -> StableDiffusion:
    """Stable Diffusion from a diffusers folder (``model_index.json``), or from the single-file
    ``sd-v1-4.ckpt`` with ``config_dir``, a local diffusers folder holding the component
    configs (the weights come from the file)."""
    from diffusers import StableDiffusionPipeline
    check_sd(path, config_dir)
    path = Path(path)
    dtype = dtype or torch.float32
    kw = dict(local_files_only=True, safety_checker=None, requires_safety_checker=False,
              dtype=dtype)
    if path.is_dir():
        pipe = StableDiffusionPipeline.from_pretrained(str(path), **kw)
    else:
        pipe = StableDiffusionPipeline.from_single_file(str(path), config=str(config_dir), **kw)
    pipe.to(device)
    return StableDiffusion.from_components(pipe.components, resolution=resolution)


def concept_kind(concept) -> str:
    """"style" when the prompts use the token as a style ("in the style of <new2>")."""
    return "style" if any(f"style of {concept.token_name}" in p for p in concept.prompts) else "object"


def course_specs(concepts, init_words: dict | None = None, num_vectors: int = 1):
    """ConceptSpecs from the course's concepts: init word = the override, else the source name's
    last word for objects ("dog") and "painting" for styles."""
    from PIL import Image

    from .textual_inversion import ConceptSpec
    specs = []
    for c in concepts:
        kind = concept_kind(c)
        init = (init_words or {}).get(c.token_name) or (
            "painting" if kind == "style" else c.src_image.split()[-1].lower())
        imgs = [np.asarray(Image.open(p).convert("RGB")) for p in c.image_paths]
        specs.append(ConceptSpec(c.token_name, init, imgs, kind, num_vectors=num_vectors))
    return specs

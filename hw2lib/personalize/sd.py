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


# The component configs of stable-diffusion-v1-4, shipped so that sd-v1-4.ckpt alone loads
# offline (diffusers' single-file loading would fetch them from the hub).
SD_V1_CONFIGS = Path(__file__).parent / "sd_configs" / "v1-4"
# A diffusers folder: each component's config and weights (either weight format)
_FOLDER_FILES = {"unet": ("config.json", "diffusion_pytorch_model"),
                 "vae": ("config.json", "diffusion_pytorch_model"),
                 "text_encoder": ("config.json", "model"),
                 "scheduler": ("scheduler_config.json", None)}
# One key per component that every SD v1.x single-file checkpoint holds
_CKPT_KEYS = {"the UNet": "model.diffusion_model.input_blocks.0.0.weight",
              "the VAE": "first_stage_model.encoder.conv_in.weight",
              "the CLIP text encoder": ("cond_stage_model.transformer.text_model.embeddings."
                                        "position_embedding.weight")}
_HOW = ("give a diffusers folder (with model_index.json) or the single file sd-v1-4.ckpt "
        "(the configs of stable-diffusion-v1-4 ship with hw2lib). Nothing is downloaded.")


def check_sd(path, config_dir=None) -> None:
    """Raise :class:`MissingModelError` unless ``path`` is a diffusers pipeline folder
    (``model_index.json``), or a single file (``.ckpt``/``.safetensors``) whose configs are in
    ``config_dir`` (default: the shipped v1.4 configs). Cheap: nothing is read; each component's
    files (folder) or keys (single file) are checked by :func:`load_sd`."""
    path = Path(path) if path else None
    if path is None or not path.exists():
        raise MissingModelError(f"Stable Diffusion not found at {path}: {_HOW}")
    if path.is_dir():
        if not (path / "model_index.json").exists():
            raise MissingModelError(f"{path} is a folder without model_index.json (not a "
                                    f"diffusers pipeline folder): {_HOW}")
        return
    if path.suffix not in (".ckpt", ".safetensors", ".pt", ".pth"):
        raise MissingModelError(f"{path} is neither a folder nor a .ckpt/.safetensors file: {_HOW}")
    cfg = Path(config_dir) if config_dir else SD_V1_CONFIGS
    need = ["model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json",
            "scheduler/scheduler_config.json"]
    missing = [n for n in need if not (cfg / n).exists()]
    if missing:
        raise MissingModelError(f"--sd-config {cfg} lacks {', '.join(missing)} (a folder with "
                                "the pipeline's component configs)")


def _check_folder(path: Path) -> None:
    """Every component's config and weights in a diffusers folder, each missing file named."""
    missing = []
    for comp, (cfg, weights) in _FOLDER_FILES.items():
        if not (path / comp / cfg).exists():
            missing.append(f"{comp}/{cfg}")
        if weights and not any((path / comp).glob(f"{weights}*.safetensors")) and \
                not any((path / comp).glob(f"{weights}*.bin")):
            missing.append(f"{comp}/{weights}.safetensors")
    if not any((path / "tokenizer" / f).exists() for f in ("vocab.json", "tokenizer.json")):
        missing.append("tokenizer/vocab.json (or tokenizer.json)")
    if missing:
        raise MissingModelError(f"{path} is not a complete diffusers Stable Diffusion folder: "
                                f"missing {', '.join(missing)}. {_HOW}")


def _check_ckpt_keys(path, checkpoint: dict) -> None:
    from ..errors import InputError
    missing = [f"{what} ({key})" for what, key in _CKPT_KEYS.items() if key not in checkpoint]
    if missing:
        raise InputError(f"{path} is not a Stable Diffusion v1.x checkpoint: no weights for "
                         f"{'; '.join(missing)}. Give sd-v1-4.ckpt or a diffusers folder.")


def _read_checkpoint(path) -> dict:
    """The tensors of a single-file checkpoint (``state_dict`` of a Lightning .ckpt, or a flat
    .safetensors); a clear error when the file cannot be read."""
    import torch

    from ..errors import InputError
    try:
        if Path(path).suffix == ".safetensors":
            from safetensors.torch import load_file
            return load_file(str(path))
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # a truncated download, a pickle with code, a non-checkpoint
        raise InputError(f"{path} cannot be read as a checkpoint ({type(e).__name__}: {e})") from None
    while isinstance(ckpt, dict) and "state_dict" in ckpt:
        ckpt = ckpt["state_dict"]
    return ckpt


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


class _EmptyFp32ListFilter:
    """diffusers 0.42 warns on every ``.to(dtype)`` that modules "should be kept in float32"
    even when the list of such modules is empty (``[]``): that case says nothing, so it is
    dropped; any real list still reaches the log."""

    @staticmethod
    def filter(record) -> bool:
        return "should be kept in float32: []" not in record.getMessage()


def load_sd(path, *, config_dir=None, dtype=None, device: str = "cpu",
            resolution: int | None = None, progress: bool = True) -> StableDiffusion:
    """Stable Diffusion from a diffusers folder (``model_index.json``), or from a single-file
    checkpoint (``sd-v1-4.ckpt``) with the component configs of ``config_dir`` (default: the
    shipped v1.4 configs) and the CLIP tokenizer rebuilt from open_clip's vocabulary: nothing is
    fetched. ``dtype`` defaults to fp16 on CUDA, fp32 on the CPU. ``progress=False`` hides
    diffusers' loading bars (in a notebook they would land on the page)."""
    import logging

    from diffusers.utils import logging as dlog
    logging.getLogger("diffusers.models.modeling_utils").addFilter(_EmptyFp32ListFilter)
    if not progress:
        dlog.disable_progress_bar()
    try:
        return _load_sd(path, config_dir=config_dir, dtype=dtype, device=device,
                        resolution=resolution)
    finally:
        if not progress:
            dlog.enable_progress_bar()


def _load_sd(path, *, config_dir, dtype, device, resolution) -> StableDiffusion:
    from diffusers import StableDiffusionPipeline

    from ..device import resolve
    dev = resolve(device)  # fail before minutes of loading when CUDA is absent
    check_sd(path, config_dir)
    path = Path(path)
    from ..precision import weights_dtype
    dtype = dtype or weights_dtype(dev)
    kw = dict(local_files_only=True, safety_checker=None, requires_safety_checker=False,
              dtype=dtype)
    if path.is_dir():
        _check_folder(path)
        pipe = StableDiffusionPipeline.from_pretrained(str(path), **kw)
    else:
        from .tiny import clip_tokenizer
        _check_ckpt_keys(path, _read_checkpoint(path))  # memory-mapped: only the keys are read
        cfg = Path(config_dir) if config_dir else SD_V1_CONFIGS
        tok = (dict(tokenizer=clip_tokenizer()) if not (cfg / "tokenizer" / "vocab.json").exists()
               else {})
        pipe = StableDiffusionPipeline.from_single_file(str(path), config=str(cfg), **tok, **kw)
    pipe.to(dev)
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

"""Stable Diffusion from local files only (never downloaded), and the course's concepts."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MissingInputError


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


def load_sd(path, *, config_dir=None, dtype=None, device: str = "cpu"):
    """A StableDiffusionPipeline's components from a diffusers folder (``model_index.json``), or
    from the single-file ``sd-v1-4.ckpt`` with ``config_dir``, a local diffusers folder holding
    the component configs (the weights come from the file)."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    check_sd(path, config_dir)
    path = Path(path)
    dtype = dtype or torch.float32
    kw = dict(local_files_only=True, safety_checker=None, requires_safety_checker=False,
              dtype=dtype)
    if path.is_dir():
        pipe = StableDiffusionPipeline.from_pretrained(str(path), **kw)
    else:
        pipe = StableDiffusionPipeline.from_single_file(str(path), config=str(config_dir), **kw)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.to(device)
    return pipe


def components(pipe) -> dict:
    return {k: getattr(pipe, k) for k in ("unet", "vae", "text_encoder", "tokenizer", "scheduler")}


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

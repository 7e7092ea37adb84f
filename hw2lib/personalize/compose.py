"""Sampling any :class:`~hw2lib.personalize.t2i.TextToImage` model with the project's DDIM and
classifier-free guidance (:mod:`hw2lib.diffusion`): plain prompts, region-composed prompts
(each prompt shapes one region of the image), and the course's output layout."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..diffusion import classifier_free_guidance, ddim_sample, ddim_timesteps, guided_eps
from ..images import to_uint8
from .t2i import Sampling, TextToImage, encode_prompts


def _sample(model: TextToImage, eps, noise: torch.Tensor, cond: dict, s: Sampling, *, eta: float,
            generator) -> np.ndarray:
    schedule = model.schedule
    lat = ddim_sample(eps, schedule, timesteps=ddim_timesteps(schedule.T, s.steps, offset=s.steps_offset),
                      eta=eta, noise=noise.to(model.device), generator=generator, cond=cond,
                      clip_x0=s.clip_x0, set_alpha_to_one=s.set_alpha_to_one).sample
    return to_uint8(model.from_latents(lat))


def _settings(model: TextToImage, overrides: dict) -> Sampling:
    return replace(model.sampling, **{k: v for k, v in overrides.items() if v is not None})


@torch.inference_mode()
def generate(model: TextToImage, prompts, *, noise: torch.Tensor, eta: float = 0.0, generator=None,
             **sampling) -> np.ndarray:
    """uint8 (N, H, W, 3) images for ``prompts`` (one per row of ``noise``, the initial
    latents), with the model's :class:`~hw2lib.personalize.t2i.Sampling` settings unless
    ``sampling`` overrides some (``steps``, ``w``, ``steps_offset``, ``set_alpha_to_one``,
    ``clip_x0``). Guidance: eps = (1 + w) eps(c) - w eps("")."""
    s = _settings(model, sampling)
    ctx = encode_prompts(model, prompts)
    null = encode_prompts(model, [""])
    eps = classifier_free_guidance(model.eps, s.w, cond_key="ctx", null_value=null)
    return _sample(model, eps, noise, {"ctx": ctx}, s, eta=eta, generator=generator)


def region_eps(model: TextToImage, left_prompt: str, right_prompt: str, w: float, n: int):
    """``eps(x, t)`` of region-masked composition for a batch of ``n``: the guided prediction of
    ``left_prompt`` on the left half of the image and that of ``right_prompt`` on the right
    half, both against the same unconditional prediction (one batch of 3n: left, right, "")."""
    ctx = encode_prompts(model, [left_prompt, right_prompt, ""]).repeat_interleave(n, 0)

    def eps(x, t):
        e_left, e_right, e_null = model.eps(torch.cat([x, x, x]), torch.cat([t, t, t]),
                                            ctx=ctx).chunk(3)
        mask = torch.zeros_like(e_left[:1, :1])
        mask[..., : x.shape[-1] // 2] = 1
        return mask * guided_eps(e_left, e_null, w) + (1 - mask) * guided_eps(e_right, e_null, w)

    return eps


@torch.inference_mode()
def generate_regions(model: TextToImage, left_prompt: str, right_prompt: str, *, noise: torch.Tensor,
                     **sampling) -> np.ndarray:
    """Region-masked composition (:func:`region_eps` at every DDIM step), so each prompt can
    only shape its own half of the image."""
    s = _settings(model, sampling)
    eps = region_eps(model, left_prompt, right_prompt, s.w, len(noise))
    return _sample(model, eps, noise, {}, s, eta=0.0, generator=None)


def generate_folder(model: TextToImage, prompts, out_dir, *, n_per_prompt: int = 25, seed: int = 0,
                    batch_size: int = 5, progress: bool = True, **kw) -> list[Path]:
    """The course's layout: ``<out>/<prompt_idx>/<k>.png``, n images per prompt."""
    from tqdm.auto import tqdm

    from ..files import save_image_atomic
    out_dir = Path(out_dir)
    folders = []
    bar = tqdm(total=len(prompts) * n_per_prompt, disable=not progress, desc="generate")
    for j, prompt in enumerate(prompts):
        folder = out_dir / str(j)
        folder.mkdir(parents=True, exist_ok=True)
        g = torch.Generator().manual_seed(seed * 1000 + j)
        for k in range(0, n_per_prompt, batch_size):
            n = min(batch_size, n_per_prompt - k)
            noise = torch.randn((n, *model.latent_shape), generator=g)
            for i, img in enumerate(generate(model, [prompt] * n, noise=noise, **kw)):
                save_image_atomic(img, folder / f"{k + i}.png")
            bar.update(n)
        folders.append(folder)
    bar.close()
    return folders


def noises(model: TextToImage, n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, *model.latent_shape, generator=torch.Generator().manual_seed(seed))


def chunked(fn, z: torch.Tensor, batch_size: int | None) -> np.ndarray:
    """``fn(noise)`` over chunks of ``batch_size`` noises (all at once when None)."""
    size = batch_size or len(z)
    return np.concatenate([fn(z[i:i + size]) for i in range(0, len(z), size)])


def draw(model: TextToImage, prompts, *, n: int, seed: int, w: float, steps: int,
         batch_size: int | None = None) -> dict:
    """``{prompt: uint8 (n, H, W, 3)}``; every prompt starts from the same n noises (drawn
    ``batch_size`` at a time)."""
    z = noises(model, n, seed)
    return {p: chunked(lambda zz, p=p: generate(model, [p] * len(zz), noise=zz, w=w,
                                                        steps=steps), z, batch_size)
            for p in prompts}

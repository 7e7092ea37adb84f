"""Text-to-image sampling with the project's DDIM (hw2lib.diffusion) over any text-conditioned
latent UNet (Stable Diffusion's or the embedded one), and the course's output layout."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..diffusion import classifier_free_guidance, ddim_sample, ddim_timesteps, scaled_linear_schedule
from ..images import to_uint8
from .textual_inversion import text_embeddings


def unet_eps(unet):
    """``eps_model(x, t, ctx)`` over a UNet2DConditionModel."""
    def eps_model(x, t, ctx):
        return unet(x.to(unet.dtype), t, encoder_hidden_states=ctx.to(unet.dtype)).sample.float()
    return eps_model


@torch.inference_mode()
def generate(components: dict, prompts, *, noise: torch.Tensor, steps: int = 50, w: float = 6.5,
             eta: float = 0.0, generator=None, latent_scale: float = 0.18215, schedule=None,
             steps_offset: int = 1, final_alpha_bar: str = "alpha_bar0",
             clip_x0: bool = False) -> np.ndarray:
    """uint8 (N, H, W, 3) images for ``prompts`` (one per row of ``noise``, the initial latents).

    Stable Diffusion's DDIM setup: scaled-linear betas, grid 981, 961, ..., 1 (leading spacing,
    ``steps_offset`` 1), the step after the last one at alpha_bar[0] (``set_alpha_to_one`` off),
    guidance eps = (1 + w) eps(c) - w eps("") (diffusers' guidance_scale = 1 + w).
    A pixel-space model (``vae`` None, the embedded one) returns its samples directly.
    """
    unet, vae, te, tok = (components[k] for k in ("unet", "vae", "text_encoder", "tokenizer"))
    schedule = schedule or scaled_linear_schedule()
    ctx = text_embeddings(tok, te, prompts)
    null = text_embeddings(tok, te, [""])
    eps = classifier_free_guidance(unet_eps(unet), w, cond_key="ctx", null_value=null)
    noise = noise.to(unet.device)
    lat = ddim_sample(eps, schedule, timesteps=ddim_timesteps(schedule.T, steps, offset=steps_offset),
                      eta=eta, noise=noise, generator=generator, cond={"ctx": ctx},
                      set_alpha_to_one=final_alpha_bar != "alpha_bar0", clip_x0=clip_x0).sample
    img = lat if vae is None else vae.decode((lat / latent_scale).to(vae.dtype)).sample.float()
    return to_uint8(img)


def latent_shape(components: dict) -> tuple[int, int, int]:
    unet = components["unet"]
    size = unet.config.sample_size
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    return (unet.config.in_channels, h, w)


def generate_folder(components: dict, prompts, out_dir, *, n_per_prompt: int = 25, seed: int = 0,
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
            noise = torch.randn((n, *latent_shape(components)), generator=g)
            for i, img in enumerate(generate(components, [prompt] * n, noise=noise, **kw)):
                save_image_atomic(img, folder / f"{k + i}.png")
            bar.update(n)
        folders.append(folder)
    bar.close()
    return folders

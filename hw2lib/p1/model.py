"""P1's model: class labels, training, loading and sampling of the conditional DDPM."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data import DIGIT_SETS, DigitSet
from ..diffusion import (classifier_free_guidance, ddim_sample, ddim_timesteps, ddpm_sample,
                         dpm_solver_timesteps, dpmpp_2m_sample)
from ..nets.presets import P1_UNET
from ..nets.unet import UNetConfig, eps_fn
from ..train import TrainConfig, load_checkpoint, train_and_export
from ..images import to_model_range, to_uint8


NULL_LABEL = 20
# Guidance dropout's null: "shared", one label 20 for every class (Ho & Salimans 2022), or
# "per-set", 20 + the set's index, so that eps(x, t, null) is the set's own digit-free model and
# guidance (1 + w) eps(c) - w eps(null) amplifies the digit only: with the shared null it also
# amplifies what tells the two sets apart, and w = 4 pushes each set's colours to an extreme.
GUIDANCE_NULLS = ("shared", "per-set")
# ancestral DDPM-1000, DDIM, DPM-Solver++(2M), and DDIM with eps re-derived from the clamped
# x0-hat (sampling.ddim_step's clipped_eps)
SAMPLERS = ("ddpm", "ddim", "dpmpp", "ddim-clipped-eps")


T = 1000


def class_label(set_name: str, digit) -> torch.Tensor:
    """The model's class label for digit(s) of a data set."""
    return torch.as_tensor(digit, dtype=torch.long) + 10 * DIGIT_SETS.index(set_name)


def null_labels(kind: str = "shared") -> list[int]:
    """Per class label 0-19, the label that guidance dropout puts in its place."""
    if kind not in GUIDANCE_NULLS:
        raise ValueError(f"guidance null must be one of {GUIDANCE_NULLS}, got {kind!r}")
    n = 10 * len(DIGIT_SETS)
    return [NULL_LABEL + (c // 10 if kind == "per-set" else 0) for c in range(n)]


def null_label(unet, set_name: str) -> int:
    """The null label of ``set_name`` in ``unet``'s label embedding: one more label than the
    classes is the shared null, one per set the per-set nulls (:func:`null_labels`)."""
    n, classes = unet.config.num_class_embeds, 10 * len(DIGIT_SETS)
    if n == classes + 1:
        return NULL_LABEL
    if n == classes + len(DIGIT_SETS):
        return NULL_LABEL + DIGIT_SETS.index(set_name)
    raise ValueError(f"a P1 UNet has {classes + 1} or {classes + len(DIGIT_SETS)} class "
                     f"embeddings (a shared or a per-set null label), this one {n}")


def training_tensors(sets: dict[str, DigitSet]) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sets' training splits as one (images in [-1, 1], class labels) pair."""
    xs, ys = zip(*[(to_model_range(ds.x_train), class_label(name, ds.y_train))
                   for name, ds in sets.items()])
    return torch.cat(xs), torch.cat(ys)


def train(sets: dict[str, DigitSet], out_dir, cfg: TrainConfig, *, unet_cfg: UNetConfig = P1_UNET,
          command: str = "", export: str = "ema", progress: bool = True) -> Path:
    """Train the conditional DDPM and export it into ``out_dir`` (see :func:`train_and_export`);
    ``cfg.guidance_null`` says which null label guidance dropout uses (:data:`GUIDANCE_NULLS`)."""
    from dataclasses import replace
    nulls = null_labels(cfg.guidance_null)  # a bad name fails before the data are built
    images, labels = training_tensors(sets)
    unet_cfg = replace(unet_cfg, num_class_embeds=max(nulls) + 1)
    return train_and_export(unet_cfg, images, labels, cfg, out_dir, T=T,
                            null_label=nulls[0] if cfg.guidance_null == "shared" else nulls,
                            config_extra={"sets": list(sets)}, command=command,
                            manifest_extra={"data_fingerprints": {n: ds.fingerprint
                                                                  for n, ds in sets.items()}},
                            export=export, progress=progress)


def load(ckpt_dir, device="cpu"):
    """(unet in eval mode on ``device``, schedule, config dict) from a directory written by
    :func:`train`."""
    from ..device import resolve
    dev = resolve(device)  # before loading: DEVICE=cuda without a GPU fails at once
    unet, schedule, cfg = load_checkpoint(ckpt_dir)
    return unet.to(dev), schedule, cfg


def grid_noise(n: int, *, seed: int, size: int = 28) -> torch.Tensor:
    """The starting noises x_T of ``n`` samples: (n, 3, size, size) from a CPU generator seeded
    by ``seed`` (the same numbers on every device)."""
    return torch.randn((n, 3, size, size), generator=torch.Generator().manual_seed(seed))


def _full_chain(schedule, sampler: str, steps: int) -> bool:
    """Whether ``sampler`` walks all T steps: DDPM with ``steps`` >= T (fewer: DDIM's strided
    grid)."""
    return sampler == "ddpm" and steps >= schedule.T


def sampler_steps(schedule, sampler: str, steps: int) -> list[int]:
    """The time steps the sampler visits, from noisiest to cleanest (DDPM with fewer than T
    steps: the strided grid of DDIM)."""
    if sampler == "dpmpp":
        return dpm_solver_timesteps(schedule.T, steps)
    if _full_chain(schedule, sampler, steps):
        return list(range(schedule.T - 1, -1, -1))
    return ddim_timesteps(schedule.T, steps)


def reverse_snr_levels(n_frames: int = 6) -> list[float]:
    """The signal-to-noise ratios alpha_bar_t / (1 - alpha_bar_t) at which the strip's inner
    frames are taken: 1/16, 1/4, 1, 4 for six frames (a factor 4 apart; the grid image itself
    is the clean end)."""
    return [4.0 ** (k - 2) for k in range(n_frames - 2)]


def reverse_steps(schedule, sampler: str, steps: int, n_frames: int = 6) -> list[int]:
    """The time steps of the reverse-process strip (the sample itself is its last frame): the
    sampler's first step (pure noise), then the first steps at which the signal-to-noise ratio
    alpha_bar_t / (1 - alpha_bar_t) of x_t reaches :func:`reverse_snr_levels` (signal
    coefficients sqrt(alpha_bar_t) 0.24, 0.45, 0.71, 0.89 for six frames). Evenly spaced steps
    would show noise in most frames: with the linear schedule the signal is below 0.1 until t
    is about 650, and a digit shows through x_t's per-pixel noise only once the SNR is near 1."""
    ts = sampler_steps(schedule, sampler, steps)
    ab = schedule.alpha_bar
    snr = ab / (1 - ab)
    shown = [ts[0]] + [next((t for t in ts if snr[t] >= s), ts[-1])
                       for s in reverse_snr_levels(n_frames)]
    return list(dict.fromkeys(shown))


# Images per batch by device. On the CPU the UNet's activations must stay in cache: measured on
# the AMD EPYC (fp32, 2 threads, DDIM-50 with guidance, 250 images): 28.9 s per 100 digits in
# batches of 250, 18.5 s in batches of 100, 15.7 s in batches of 50. 100 keeps the report's
# 100-per-set grids one batch, so they are drawn as before.
BATCH = {"cpu": 100, "cuda": 250}
# The batch size of the stored sweeps and sampler curves (drawn before BATCH existed): they keep
# it, so that rerunning their commands reproduces them image for image.
STORED_BATCH = 250


def sample(unet, schedule, set_name: str, digits, *, sampler: str = "ddim", steps: int = 50,
           w: float = 2.0, seed: int = 0, noise: torch.Tensor | None = None, eta: float = 0.0,
           clip_x0: bool = True, record=(), batch_size: int | None = None, progress: bool = False,
           precision: str | None = None):
    """Draw one image per entry of ``digits`` from ``set_name``. Returns (uint8 (N, 28, 28, 3),
    trajectory {t: x_t (B, 3, 28, 28) on the CPU} of the first batch). The starting noises are
    ``noise`` or :func:`grid_noise` (``seed``); the DDPM and eta > 0 noise comes from a generator
    seeded by ``seed`` as well. Images are drawn in batches of ``batch_size`` on the UNet's
    device (default :data:`BATCH` for its device type); the DDPM / eta > 0 noise follows the
    batching, so a draw of more images than one batch reproduces only at the same batch size.
    ``clip_x0`` clamps x0-hat to the data range [-1, 1] at every step (diffusers'
    default ``clip_sample=True``): at large t an eps error is multiplied by
    sqrt(1 - alpha_bar_t) / sqrt(alpha_bar_t) (~160 at t = 980) in x0-hat, and without the
    clamp a small model's trajectories drift out of range. ``precision``: "auto" (bf16
    autocast where :mod:`hw2lib.precision` measured it to pay on this machine; bf16 on a GPU
    that has it), "fp32" or "bf16"; None (the notebooks' and the stored measurements'): fp32 on
    the CPU, where "auto" would make the page's images depend on a micro-benchmark (on one AMD
    EPYC its bf16 rate measured 2.1x and 4.0x fp32's on different days, on either side of the
    margin), and "auto" on a GPU. ``python -m hw2lib p1 sample`` passes "auto"."""
    from ..device import of
    from ..precision import resolve as resolve_precision
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    digits = torch.as_tensor(np.asarray(digits), dtype=torch.long)
    # one stream: x_T first (= grid_noise(seed)), then the DDPM / eta > 0 noise after it
    g = torch.Generator().manual_seed(seed)
    size = unet.config.sample_size
    drawn = torch.randn((len(digits), 3, size, size), generator=g)  # = grid_noise(n, seed=seed)
    noise = drawn if noise is None else noise
    if len(noise) != len(digits):
        raise ValueError(f"{len(noise)} noises for {len(digits)} digits")
    dev = of(unet)
    batch_size = batch_size or BATCH.get(dev.type, BATCH["cpu"])
    if precision is None:
        precision = "fp32" if dev.type == "cpu" else "auto"
    autocast = resolve_precision(precision, device=dev).autocast
    eps = classifier_free_guidance(eps_fn(unet, autocast=autocast, device_type=dev.type), w,
                                   cond_key="y", null_value=null_label(unet, set_name))
    timesteps = sampler_steps(schedule, sampler, steps)
    out, traj = [], {}
    for i in range(0, len(digits), batch_size):
        y = class_label(set_name, digits[i:i + batch_size]).to(dev)
        kw = dict(noise=noise[i:i + batch_size].to(dev), generator=g, cond={"y": y},
                  clip_x0=clip_x0, record=record if i == 0 else (), progress=progress)
        if _full_chain(schedule, sampler, steps):
            res = ddpm_sample(eps, schedule, **kw)
        elif sampler == "ddpm":  # ancestral sampling on a strided grid: DDIM with eta = 1, whose
            # sigma is the posterior std of the strided chain (Song et al. 2021, eq. 16)
            res = ddim_sample(eps, schedule, timesteps=timesteps, eta=1.0, **kw)
        elif sampler == "dpmpp":  # DPM-Solver++(2M): `steps` model evaluations, no eta
            res = dpmpp_2m_sample(eps, schedule, timesteps=timesteps, **kw)
        else:
            res = ddim_sample(eps, schedule, timesteps=timesteps, eta=eta,
                              clipped_eps=sampler == "ddim-clipped-eps", **kw)
        out.append(to_uint8(res.sample))
        traj = traj or {t: x.cpu() for t, x in res.trajectory.items()}
    return np.concatenate(out), traj

"""The course's DDIM for faces: grid 981, 961, ..., 1, x0-hat clamped, the two public
alpha_bar conventions; the diffusers reference; slerp/lerp of noises."""
from __future__ import annotations

import numpy as np
import torch

from ..diffusion import (Schedule, ddim_sample, ddim_timesteps, image_generators, lerp,
                         linear_schedule, slerp)
from ..images import minmax, unit_to_uint8


T = 1000


N_STEPS = 50


# Where the two public conventions differ: which alpha_bar goes with grid step t, and what the
# step after the last one (t = 1) moves to.
#   "t":   alpha_bar[t]   on 981, ..., 1, then alpha_bar[0]  (diffusers DDIMScheduler with
#          steps_offset=1, set_alpha_to_one=False: the embedded ground truth's convention)
#   "t-1": alpha_bar[t-1] on 981, ..., 1, then 1.0           (the DDIM paper's code read on an
#          offset grid)
CONVENTIONS = {"t": dict(alpha_bar_shift=0, set_alpha_to_one=False),
               "t-1": dict(alpha_bar_shift=1, set_alpha_to_one=True)}


DEFAULT_CONVENTION = "t"


def ddim_faces(eps_model, noise: torch.Tensor, *, eta: float = 0.0, schedule: Schedule | None = None,
               convention: str = DEFAULT_CONVENTION, seed: int = 0,
               image_ids=None, steps: int = N_STEPS) -> torch.Tensor:
    """The course's DDIM: 50 steps on 981, ..., 1, x0-hat clamped to [-1, 1] (``steps``: fewer
    only for the rehearsal, which runs every stage at minimal cost). ``noise``: x_T
    (B, C, H, W). Returns x_0 (B, C, H, W), not normalised. The eta > 0 noise of image i comes
    from its own generator seeded by (``seed``, ``image_ids[i]``) (default ids 0..B-1), so it
    does not depend on how the images are batched."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {list(CONVENTIONS)}, got {convention!r}")
    schedule = schedule or linear_schedule(T)
    res = ddim_sample(eps_model, schedule, timesteps=ddim_timesteps(schedule.T, steps, offset=1),
                      eta=eta, noise=noise, clip_x0=True, **CONVENTIONS[convention],
                      generator=image_generators(seed, range(len(noise)) if image_ids is None
                                                 else image_ids))
    return res.sample


def interpolate(x0: torch.Tensor, x1: torch.Tensor, alphas, how: str = "slerp") -> torch.Tensor:
    """Noises between x0 and x1 (each (1, C, H, W)) at ``alphas``: (len(alphas), C, H, W)."""
    f = {"slerp": slerp, "lerp": lerp}[how]
    return torch.cat([f(x0, x1, float(a)) for a in alphas])


def diffusers_reference(eps_model, noise: torch.Tensor) -> torch.Tensor:
    """Ground truth for eta = 0 drawn by diffusers' DDIMScheduler (an independent implementation)
    configured as the course: linear betas, 50 steps on 981..1, x0 clipped, final alpha_bar[0]."""
    from diffusers import DDIMScheduler
    sched = DDIMScheduler(num_train_timesteps=T, beta_start=1e-4, beta_end=2e-2,
                          beta_schedule="linear", clip_sample=True, clip_sample_range=1.0,
                          set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading")
    sched.set_timesteps(N_STEPS)
    x = noise.clone()
    with torch.inference_mode():
        for t in sched.timesteps:
            eps = eps_model(x, torch.full((len(x),), int(t), dtype=torch.long, device=x.device))
            x = sched.step(eps, t, x, eta=0.0).prev_sample
    return x


def sample_uint8(eps_model, noise, *, eta: float = 0.0, convention: str = DEFAULT_CONVENTION,
                 seed: int = 0, image_ids=None, device="cpu",
                 normalise: bool = True, steps: int = N_STEPS) -> np.ndarray:
    """ddim_faces -> min-max (the course's save; ``normalise=False``: the model's [-1, 1] range
    as it is, clamped) -> uint8 (B, H, W, C)."""
    x = ddim_faces(eps_model, noise.to(device), eta=eta, convention=convention, seed=seed,
                   image_ids=image_ids, steps=steps).cpu()
    return unit_to_uint8(minmax(x) if normalise else (x.clamp(-1, 1) + 1) / 2)

"""Diffusion math: schedules, the training loss, DDPM, DDIM and DPM-Solver++(2M) samplers,
guidance, slerp.

Nothing here knows about digits, faces or a particular network: samplers take any
``eps_model(x_t, t, **cond)``.
"""
from .dpm_solver import dpm_solver_timesteps, dpmpp_2m_sample
from .guidance import classifier_free_guidance
from .interp import lerp, slerp
from .loss import eps_loss, min_snr_weight
from .sampling import (SampleResult, ddim_sample, ddim_sigma, ddim_timesteps, ddpm_sample,
                       derived_seed, image_generators)
from .schedule import (Schedule, gather, linear_schedule, posterior_mean, predict_x0, q_sample,
                       scaled_linear_schedule)

__all__ = ["Schedule", "SampleResult", "classifier_free_guidance", "ddim_sample", "ddim_sigma",
           "ddim_timesteps", "ddpm_sample", "derived_seed", "dpm_solver_timesteps",
           "dpmpp_2m_sample", "eps_loss", "gather",
           "image_generators", "lerp", "linear_schedule", "min_snr_weight", "posterior_mean",
           "predict_x0", "q_sample", "scaled_linear_schedule", "slerp"]

"""Diffusion math: schedules, the training loss, DDPM and DDIM steps and samplers,
DPM-Solver++(2M), guidance, slerp, a grey eps-model built from a 1-channel one. Nothing here
knows about digits, faces or a particular network: samplers take any
``eps_model(x_t, t, **cond)``.

Notation (Ho et al. 2020; Song et al. 2021, whose alpha_t is our alpha_bar_t):

- t: an integer time step in [0, T); x_0 the data, x_t the noised sample, eps ~ N(0, I).
- beta_t: the noise schedule (:class:`Schedule`); alpha_t = 1 - beta_t;
  alpha_bar_t = prod_{s <= t} alpha_s, so x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.
- x0_hat: the prediction of x_0 from x_t and the model's eps (:func:`x0_from_eps`).
- sigma_t: the reverse step's noise scale: beta_tilde_t^(1/2) in DDPM (Ho et al. eq. 7),
  eta sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_prev) in
  DDIM (Song et al. eq. 16); eta = 0 is deterministic DDIM, eta = 1 DDPM-like.
- set_alpha_to_one: alpha_bar after the last DDIM step is 1 (True) or alpha_bar_0 (False), the
  boolean of diffusers' ``DDIMScheduler``.
- w: the classifier-free guidance weight, eps = (1 + w) eps(c) - w eps(null) (Ho & Salimans
  2022); diffusers' guidance_scale is 1 + w.
"""
from .dpm_solver import dpm_solver_timesteps, dpmpp_2m_sample
from .grey import grey_coordinate, grey_eps
from .guidance import classifier_free_guidance, guided_eps
from .interp import lerp, slerp
from .loss import eps_loss, min_snr_weight
from .sampling import (SampleResult, StepOutput, ddim_alpha_bars, ddim_sample, ddim_sigma,
                       ddim_step, ddim_timesteps, ddpm_sample, ddpm_step, derived_seed,
                       image_generators)
from .schedule import (Schedule, gather, linear_schedule, posterior_mean, predict_x0, q_sample,
                       scaled_linear_schedule, x0_from_eps)

__all__ = ["Schedule", "SampleResult", "StepOutput", "classifier_free_guidance", "ddim_alpha_bars",
           "ddim_sample", "ddim_sigma", "ddim_step", "ddim_timesteps", "ddpm_sample", "ddpm_step",
           "derived_seed", "dpm_solver_timesteps", "dpmpp_2m_sample", "eps_loss", "gather",
           "grey_coordinate", "grey_eps", "guided_eps", "image_generators", "lerp",
           "linear_schedule", "min_snr_weight", "posterior_mean", "predict_x0", "q_sample",
           "scaled_linear_schedule", "slerp", "x0_from_eps"]

"""The diffusion core against diffusers' schedulers (same betas, same model, same noise)."""
import math

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from hw2lib.diffusion import (classifier_free_guidance, ddim_sample, ddim_sigma, ddim_timesteps,
                              ddpm_sample, lerp, linear_schedule, min_snr_weight, posterior_mean,
                              q_sample, slerp)

T = 1000
SHAPE = (3, 2, 4, 4)


def toy_eps(x, t, y=None):
    """A seeded dummy eps-model: nonlinear in x and dependent on t (and y when given)."""
    s = (1 + t.float() / T).view(-1, 1, 1, 1)
    out = 0.6 * torch.tanh(x * s) + 0.05 * torch.sin(t.float() / 37).view(-1, 1, 1, 1)
    return out if y is None else out + 0.01 * y.float().view(-1, 1, 1, 1)


def diffusers_ddpm():
    return DDPMScheduler(num_train_timesteps=T, beta_schedule="linear", beta_start=1e-4,
                         beta_end=2e-2, clip_sample=False, variance_type="fixed_small")


def diffusers_ddim():
    return DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", beta_start=1e-4,
                         beta_end=2e-2, clip_sample=False, set_alpha_to_one=True, steps_offset=0,
                         timestep_spacing="leading")


def test_schedule_matches_diffusers():
    torch.testing.assert_close(linear_schedule(T).alpha_bar.float(),
                               diffusers_ddpm().alphas_cumprod, rtol=1e-6, atol=1e-7)


def test_q_sample_matches_add_noise():
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(SHAPE, generator=g), torch.randn(SHAPE, generator=g)
    t = torch.tensor([0, 17, 500, 999])[:SHAPE[0]]
    # diffusers works in fp32 and we in fp64: 1e-5 absolute is float rounding near zero, while
    # a one-index-off alpha_bar moves values by 1e-4 or more even at t = 0
    torch.testing.assert_close(q_sample(linear_schedule(T), x0, t, noise),
                               diffusers_ddpm().add_noise(x0, noise, t), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("t", [0, 1, 10, 500, 999])
def test_posterior_mean_and_variance_match_ddpm_step(t):
    """diffusers' step is mean + sqrt(beta_tilde_t) z: rebuild it from ours with the same z."""
    sched, ours = diffusers_ddpm(), linear_schedule(T)
    x_t, eps = torch.randn(SHAPE), torch.randn(SHAPE)
    ref = sched.step(eps, t, x_t, generator=torch.Generator().manual_seed(7))
    z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(7))
    mean = posterior_mean(ours, ref.pred_original_sample, x_t, torch.full((SHAPE[0],), t))
    std = ours.posterior_variance()[t].sqrt().float() if t > 0 else 0.0
    # diffusers keeps alphas_cumprod in float32, ours are float64: at t = 1, 1 - alpha_bar_t
    # (3e-4) has few float32 digits, hence 1e-3 there (an index off by one moves it by >1e-2).
    tol = 1e-3 if t <= 1 else 2e-4
    torch.testing.assert_close(mean + std * z, ref.prev_sample, rtol=tol, atol=tol)


def _diffusers_loop(sched, x, generator, eta=None, y=None):
    for t in sched.timesteps:
        tt = torch.full((x.shape[0],), int(t))
        eps = toy_eps(x, tt, y)
        kw = {} if eta is None else {"eta": eta}
        x = sched.step(eps, t, x, generator=generator, **kw).prev_sample
    return x


def test_ddpm_sampler_matches_diffusers_loop():
    sched = diffusers_ddpm()
    sched.set_timesteps(T)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    ref = _diffusers_loop(sched, x_T.clone(), g1)
    ours = ddpm_sample(toy_eps, linear_schedule(T), noise=x_T, generator=g2).sample
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n_steps", [10, 50])
def test_ddim_eta0_matches_diffusers(n_steps):
    sched = diffusers_ddim()
    sched.set_timesteps(n_steps)
    assert sched.timesteps.tolist() == ddim_timesteps(T, n_steps)
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    ref = _diffusers_loop(sched, x_T.clone(), None, eta=0.0)
    ours = ddim_sample(toy_eps, linear_schedule(T), timesteps=ddim_timesteps(T, n_steps),
                       noise=x_T).sample
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_ddim_fails_on_an_off_by_one_schedule():
    """The agreement above is sharp: reading alpha_bar one index off moves the result."""
    sched = diffusers_ddim()
    sched.set_timesteps(50)
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    ref = _diffusers_loop(sched, x_T.clone(), None, eta=0.0)
    shifted = ddim_sample(lambda x, t: toy_eps(x, t - 1), linear_schedule(T),
                          timesteps=[t + 1 for t in ddim_timesteps(T, 50)], alpha_bar_shift=1,
                          noise=x_T).sample
    same_idx = ddim_sample(toy_eps, linear_schedule(T), timesteps=ddim_timesteps(T, 50),
                           noise=x_T).sample
    off = ddim_sample(toy_eps, linear_schedule(T), timesteps=[t + 1 for t in ddim_timesteps(T, 50)],
                      noise=x_T).sample
    torch.testing.assert_close(shifted, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(same_idx, ref, rtol=1e-5, atol=1e-5)
    assert (off - ref).abs().max() > 1e-3


@pytest.mark.parametrize("eta", [0.5, 1.0])
def test_ddim_eta_matches_diffusers_with_same_noise(eta):
    sched = diffusers_ddim()
    sched.set_timesteps(20)
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    ref = _diffusers_loop(sched, x_T.clone(), torch.Generator().manual_seed(5), eta=eta)
    ours = ddim_sample(toy_eps, linear_schedule(T), timesteps=ddim_timesteps(T, 20), eta=eta,
                       noise=x_T, generator=torch.Generator().manual_seed(5)).sample
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_ddim_eta1_on_full_grid_is_ddpm():
    """sigma_t(eta=1) on the full grid is the DDPM posterior std, and the step is the same."""
    s = linear_schedule(T)
    ab, ab_prev = s.alpha_bar, s.alpha_bar_prev()
    torch.testing.assert_close(ddim_sigma(ab[1:], ab_prev[1:], 1.0) ** 2,
                               s.posterior_variance()[1:], rtol=1e-10, atol=1e-12)
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    a = ddim_sample(toy_eps, s, timesteps=list(range(T - 1, -1, -1)), eta=1.0, noise=x_T,
                    generator=torch.Generator().manual_seed(2)).sample
    b = ddpm_sample(toy_eps, s, noise=x_T, generator=torch.Generator().manual_seed(2)).sample
    # DDIM draws noise at t=0 too (with sigma=0), DDPM does not; the draws line up until then.
    torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


def test_trajectory_records_requested_steps():
    res = ddim_sample(toy_eps, linear_schedule(T), timesteps=ddim_timesteps(T, 10),
                      shape=SHAPE, generator=torch.Generator().manual_seed(0), record=[900, 0])
    assert sorted(res.trajectory) == [0, 900]
    assert res.trajectory[900].shape == SHAPE


def test_timestep_grids():
    assert ddim_timesteps(1000, 50)[:3] == [980, 960, 940] and ddim_timesteps(1000, 50)[-1] == 0
    course = ddim_timesteps(1000, 50, offset=1)
    assert course[0] == 981 and course[-1] == 1 and len(course) == 50
    with pytest.raises(ValueError):
        ddim_timesteps(1000, 0)


def test_classifier_free_guidance_formula():
    x, t, y = torch.randn(SHAPE), torch.tensor([3, 500, 999]), torch.tensor([1, 2, 3])
    g = classifier_free_guidance(toy_eps, 2.0, cond_key="y", null_value=20)
    want = 3.0 * toy_eps(x, t, y) - 2.0 * toy_eps(x, t, torch.full_like(y, 20))
    torch.testing.assert_close(g(x, t, y=y), want)
    assert classifier_free_guidance(toy_eps, 0.0, null_value=20) is toy_eps


def test_slerp_endpoints_and_norm():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 3, 16, 16, generator=g), torch.randn(1, 3, 16, 16, generator=g)
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    mid_s, mid_l = slerp(a, b, 0.5), lerp(a, b, 0.5)
    # Independent Gaussians are nearly orthogonal: slerp keeps the norm, lerp shrinks it by ~1/sqrt(2)
    assert abs(mid_s.norm() / a.norm() - 1) < 0.05
    assert abs(mid_l.norm() / a.norm() - 1 / math.sqrt(2)) < 0.05
    torch.testing.assert_close(slerp(a, a, 0.3), a)


def test_min_snr_weight_matches_diffusers_training_scripts():
    """The Min-SNR weight of diffusers' train_text_to_image.py (--snr_gamma, eps prediction)."""
    from diffusers.training_utils import compute_snr
    t = torch.tensor([0, 50, 120, 300, 600, 999])
    snr = compute_snr(diffusers_ddpm(), t)
    expected = torch.stack([snr, 5.0 * torch.ones_like(snr)], 1).min(1)[0] / snr
    got = min_snr_weight(linear_schedule(), t, 5.0)
    torch.testing.assert_close(got, expected.float(), rtol=1e-5, atol=1e-6)
    assert got[0] < 0.01 and got[-1] == 1.0  # low noise down-weighted, high noise untouched


def test_weighted_eps_loss_is_diffusers_min_snr_loss():
    """eps_loss with the Min-SNR weight is the loss of diffusers' train_text_to_image.py with
    --snr_gamma (per-sample mean squared error, weighted, then averaged); without a weight it is
    the plain L_simple, which the weight changes (negative control)."""
    import torch.nn.functional as F
    from diffusers.training_utils import compute_snr
    from hw2lib.diffusion import eps_loss, q_sample
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn((4, *SHAPE[1:]), generator=g), torch.randn((4, *SHAPE[1:]), generator=g)
    t = torch.tensor([3, 100, 400, 900])
    model = lambda x, tt: 0.5 * x  # noqa: E731  any eps-model will do
    sched = linear_schedule()
    got = eps_loss(model, sched, x0, t=t, noise=noise, weight=min_snr_weight(sched, t, 5.0))
    snr = compute_snr(diffusers_ddpm(), t)
    w = torch.stack([snr, 5.0 * torch.ones_like(snr)], 1).min(1)[0] / snr
    pred = model(q_sample(sched, x0, t, noise), t)
    ref = (F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3)) * w).mean()
    torch.testing.assert_close(got, ref.float(), rtol=1e-5, atol=1e-6)
    plain = eps_loss(model, sched, x0, t=t, noise=noise)
    torch.testing.assert_close(plain, F.mse_loss(pred, noise))
    assert abs(float(plain - got)) > 0.1 * float(plain)


@pytest.mark.parametrize("t", [1, 500, 999])
def test_ddpm_step_is_diffusers_step(t):
    """One step, both outputs (x_{t-1} and x0_hat), same noise generator."""
    from hw2lib.diffusion import ddpm_step
    x_t, eps = torch.randn(SHAPE), torch.randn(SHAPE)
    ref = diffusers_ddpm().step(eps, t, x_t, generator=torch.Generator().manual_seed(3))
    ours = ddpm_step(linear_schedule(T), eps, t, x_t, generator=torch.Generator().manual_seed(3))
    tol = 1e-3 if t <= 1 else 2e-4  # float32 alpha_bar in diffusers (see the test above)
    torch.testing.assert_close(ours.pred_original_sample, ref.pred_original_sample,
                               rtol=tol, atol=tol)
    torch.testing.assert_close(ours.prev_sample, ref.prev_sample, rtol=tol, atol=tol)
    # negative control: the same step read at another time step is far outside the tolerance
    other = ddpm_step(linear_schedule(T), eps, t // 2, x_t, generator=torch.Generator().manual_seed(3))
    assert (other.prev_sample - ref.prev_sample).abs().max() > 10 * tol


@pytest.mark.parametrize("set_alpha_to_one", [True, False])
def test_ddim_step_is_diffusers_step_at_the_last_step(set_alpha_to_one):
    """The last step of a grid is where set_alpha_to_one acts: 1 or alpha_bar_0 after it."""
    from hw2lib.diffusion import ddim_alpha_bars, ddim_step
    sched = DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", beta_start=1e-4,
                          beta_end=2e-2, clip_sample=False, set_alpha_to_one=set_alpha_to_one,
                          steps_offset=1, timestep_spacing="leading")
    sched.set_timesteps(50)
    grid = ddim_timesteps(T, 50, offset=1)
    assert sched.timesteps.tolist() == grid
    pairs = ddim_alpha_bars(linear_schedule(T), grid, set_alpha_to_one=set_alpha_to_one)
    g = torch.Generator().manual_seed(0)  # seeded: the test does not depend on the tests before it
    x_t, eps = torch.randn(SHAPE, generator=g), torch.randn(SHAPE, generator=g)
    for i in (0, len(grid) - 1):
        ref = sched.step(eps, grid[i], x_t, eta=0.0)
        ours = ddim_step(eps, x_t, *pairs[i])
        torch.testing.assert_close(ours.prev_sample, ref.prev_sample, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours.pred_original_sample, ref.pred_original_sample,
                                   rtol=1e-5, atol=1e-5)
    other = ddim_alpha_bars(linear_schedule(T), grid, set_alpha_to_one=not set_alpha_to_one)
    assert (ddim_step(eps, x_t, *other[-1]).prev_sample - ref.prev_sample).abs().max() > 1e-3


def test_ddim_clipped_eps_is_diffusers_use_clipped_model_output():
    """With x0-hat clamped, clipped_eps re-derives eps from the clamped x0-hat as diffusers'
    use_clipped_model_output=True does; the default keeps the model's eps as diffusers' default
    does; the two differ where the clamp acts."""
    from hw2lib.diffusion import ddim_alpha_bars, ddim_step
    sched = DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", beta_start=1e-4,
                          beta_end=2e-2, clip_sample=True, set_alpha_to_one=True,
                          steps_offset=0, timestep_spacing="leading")
    sched.set_timesteps(20)
    grid = ddim_timesteps(T, 20)
    pairs = ddim_alpha_bars(linear_schedule(T), grid, set_alpha_to_one=True)
    g = torch.Generator().manual_seed(0)
    x_t, eps = 2 * torch.randn(SHAPE, generator=g), torch.randn(SHAPE, generator=g)
    i = len(grid) // 2
    for clipped in (False, True):
        ref = sched.step(eps, grid[i], x_t, eta=0.0, use_clipped_model_output=clipped)
        ours = ddim_step(eps, x_t, *pairs[i], clip_x0=True, clipped_eps=clipped)
        torch.testing.assert_close(ours.prev_sample, ref.prev_sample, rtol=1e-5, atol=1e-5)
    kept = ddim_step(eps, x_t, *pairs[i], clip_x0=True).prev_sample
    assert (kept - ours.prev_sample).abs().max() > 1e-2  # the clamp acted here

"""DPM-Solver++(2M) against diffusers' DPMSolverMultistepScheduler (same betas, model, noise)."""
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler

from hw2lib.diffusion import (ddim_sample, dpm_solver_timesteps, dpmpp_2m_sample,
                              linear_schedule)

T = 1000
SHAPE = (3, 2, 4, 4)


AB = linear_schedule(T).alpha_bar.float()


def toy_eps(x, t, y=None):
    """A dummy eps-model on the scale of a trained one: the exact E[eps | x_t] for data
    x_0 ~ N(0, 0.25 I), sqrt(1 - a) x / (0.25 a + 1 - a) with a = alpha_bar_t, plus a nonlinear
    term (and a label term when y is given), so that samples stay O(1)."""
    a = AB[t].view(-1, 1, 1, 1)
    out = (1 - a).sqrt() * x / (0.25 * a + 1 - a) + 0.1 * torch.tanh(2 * x) * (1 - a)
    return out if y is None else out + 0.01 * y.float().view(-1, 1, 1, 1)


def diffusers_dpmpp(order=2, **kw):
    return DPMSolverMultistepScheduler(num_train_timesteps=T, beta_schedule="linear",
                                       beta_start=1e-4, beta_end=2e-2,
                                       algorithm_type="dpmsolver++", solver_order=order,
                                       solver_type="midpoint", prediction_type="epsilon",
                                       timestep_spacing="linspace", final_sigmas_type="zero",
                                       lower_order_final=True, **kw)


def diffusers_loop(sched, x, model=toy_eps, y=None):
    for t in sched.timesteps:
        tt = torch.full((x.shape[0],), int(t))
        x = sched.step(model(x, tt, y) if y is not None else model(x, tt), t, x).prev_sample
    return x


def x_T(seed=0, shape=SHAPE):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("n_steps", [5, 10, 15, 25])
def test_timesteps_match_diffusers(n_steps):
    sched = diffusers_dpmpp()
    sched.set_timesteps(n_steps)
    assert sched.timesteps.tolist() == dpm_solver_timesteps(T, n_steps)


@pytest.mark.parametrize("n_steps", [5, 10, 15, 25])
def test_dpmpp_2m_matches_diffusers(n_steps):
    sched = diffusers_dpmpp()
    sched.set_timesteps(n_steps)
    ref = diffusers_loop(sched, x_T())
    ours = dpmpp_2m_sample(toy_eps, linear_schedule(T), timesteps=dpm_solver_timesteps(T, n_steps),
                           noise=x_T()).sample
    # diffusers keeps alpha_bar in float32, ours float64: measured differences are below 1e-6
    # on samples of size ~1, while each negative control below moves them by more than 1e-4
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_dpmpp_2m_clip_is_diffusers_static_thresholding():
    """clip_x0 = diffusers' thresholding with sample_max_value = 1 (s is clamped to 1)."""
    sched = diffusers_dpmpp(thresholding=True, sample_max_value=1.0)
    sched.set_timesteps(10)
    x = 3 * x_T(1)
    ref = diffusers_loop(sched, x.clone())
    ours = dpmpp_2m_sample(toy_eps, linear_schedule(T), timesteps=dpm_solver_timesteps(T, 10),
                           noise=x, clip_x0=True).sample
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_dpmpp_2m_on_a_unet_with_class_labels():
    """The same on a small random diffusers UNet with class labels (the P1 call shape)."""
    from diffusers import UNet2DModel
    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), layers_per_block=1,
                       norm_num_groups=4, num_class_embeds=5).eval()

    def eps(x, t, y):
        return unet(x, t, class_labels=y).sample

    y = torch.tensor([0, 3])
    x = x_T(2, (2, 3, 8, 8))
    sched = diffusers_dpmpp()
    sched.set_timesteps(8)
    with torch.inference_mode():
        ref = diffusers_loop(sched, x.clone(), eps, y)
    ours = dpmpp_2m_sample(eps, linear_schedule(T), timesteps=dpm_solver_timesteps(T, 8),
                           noise=x, cond={"y": y}).sample
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_first_order_is_ddim_and_differs_from_2m():
    """Negative control 1: DPM-Solver++(1) is DDIM (eta = 0) on the same grid, and the second
    order changes the result well beyond the tolerance above."""
    grid = dpm_solver_timesteps(T, 10)
    s = linear_schedule(T)
    first = dpmpp_2m_sample(toy_eps, s, timesteps=grid, order=1, noise=x_T()).sample
    ddim = ddim_sample(toy_eps, s, timesteps=grid, noise=x_T()).sample
    torch.testing.assert_close(first, ddim, rtol=1e-5, atol=1e-5)
    sched = diffusers_dpmpp()
    sched.set_timesteps(10)
    ref = diffusers_loop(sched, x_T())
    assert (first - ref).abs().max() > 1e-2


def test_first_order_with_the_clamp_is_ddim_with_eps_from_the_clamped_x0():
    """With the data prediction clamped, DPM-Solver++(1)'s step
    sigma_s/sigma_t x_t + alpha_s (1 - e^{-h}) clamp(x0) is DDIM's step with eps re-derived from the
    clamped x0 (alpha_s clamp(x0) + sigma_s (x_t - alpha_t clamp(x0)) / sigma_t): the same numbers.
    DDIM's default clamp keeps the model's eps and lands elsewhere (negative control)."""
    grid = dpm_solver_timesteps(T, 10)
    s = linear_schedule(T)
    noise = 2 * x_T(shape=(8, 3, 4, 4))  # wide enough that the clamp acts
    first = dpmpp_2m_sample(toy_eps, s, timesteps=grid, order=1, noise=noise,
                            clip_x0=True).sample
    refit = ddim_sample(toy_eps, s, timesteps=grid, noise=noise, clip_x0=True,
                        clipped_eps=True).sample
    kept = ddim_sample(toy_eps, s, timesteps=grid, noise=noise, clip_x0=True).sample
    torch.testing.assert_close(first, refit, rtol=1e-5, atol=1e-5)
    assert (first - kept).abs().max() > 1e-2


def test_off_by_one_timesteps_differ():
    """Negative control 2: the model called at t while the schedule is read at t + 1 (a grid
    one index off) moves the result well beyond the tolerance of the oracle test."""
    sched = diffusers_dpmpp()
    sched.set_timesteps(10)
    ref = diffusers_loop(sched, x_T())
    grid = dpm_solver_timesteps(T, 10)
    off = dpmpp_2m_sample(lambda x, t: toy_eps(x, t - 1), linear_schedule(T),
                          timesteps=[min(t + 1, T - 1) for t in grid], noise=x_T()).sample
    assert (off - ref).abs().max() > 1e-4  # measured 1.2e-3, 100x the oracle tolerance


def test_record_and_errors():
    res = dpmpp_2m_sample(toy_eps, linear_schedule(T), timesteps=dpm_solver_timesteps(T, 5),
                          shape=SHAPE, generator=torch.Generator().manual_seed(0), record=[999])
    assert list(res.trajectory) == [999] and res.sample.shape == SHAPE
    with pytest.raises(ValueError):
        dpmpp_2m_sample(toy_eps, linear_schedule(T), timesteps=[10, 20], shape=SHAPE)
    with pytest.raises(ValueError):
        dpm_solver_timesteps(T, 0)


def test_p1_sample_with_dpmpp():
    """p1.sample's "dpmpp" sampler is this solver on the guided eps-model, `steps` evaluations."""
    import numpy as np

    from hw2lib import p1
    from hw2lib.diffusion import classifier_free_guidance
    from hw2lib.nets.unet import UNetConfig, build_unet, eps_fn
    from hw2lib.images import to_uint8
    torch.manual_seed(0)
    unet = build_unet(UNetConfig(sample_size=28, block_out_channels=(8, 16), layers_per_block=1,
                                 down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
                                 attention_head_dim=8, num_class_embeds=21)).eval()
    s = linear_schedule(T)
    calls = []
    inner = eps_fn(unet)

    def counted(x, t, **c):
        calls.append(int(t[0]))
        return inner(x, t, **c)

    imgs, traj = p1.sample(unet, s, "svhn", [0, 7], sampler="dpmpp", steps=5, w=2.0, seed=3,
                           record=[999], precision="fp32")
    assert imgs.shape == (2, 28, 28, 3) and list(traj) == [999]
    noise = p1.grid_noise(2, seed=3)
    guided = classifier_free_guidance(counted, 2.0, cond_key="y", null_value=p1.NULL_LABEL)
    ref = dpmpp_2m_sample(guided, s, timesteps=dpm_solver_timesteps(T, 5), noise=noise,
                          cond={"y": p1.class_label("svhn", [0, 7])}, clip_x0=True).sample
    np.testing.assert_array_equal(imgs, to_uint8(ref))
    assert calls == dpm_solver_timesteps(T, 5)  # one (doubled-batch) evaluation per step
    assert p1.sampler_steps(s, "dpmpp", 5) == dpm_solver_timesteps(T, 5)

"""The grey face model (hw2lib.diffusion.grey): a 1-channel eps-model sampled in three channels
gives exactly grey x0-predictions, and around the exact 1-channel optimum it is the exact
3-channel optimum (with negative controls)."""
import math
from pathlib import Path

import pytest
import torch

from hw2lib import p2
from hw2lib.diffusion import (ddim_alpha_bars, ddim_sample, ddim_step, ddim_timesteps, gather,
                              grey_coordinate, grey_eps, linear_schedule)
from hw2lib.nets.unet import UNetConfig, build_unet, eps_fn

ROOT = Path(__file__).resolve().parents[1]
SCHED = linear_schedule(1000)
S, M = 0.6, 0.1  # toy grey data: g ~ N(M, S^2) per pixel, independent pixels

TINY_GREY = UNetConfig(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                       layers_per_block=1, down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
                       attention_head_dim=8)


def optimal_eps_3(x, t):
    """E[eps | x_t] for x_0 = g (1, 1, 1), g ~ N(M, S^2), in closed form per pixel (float64):
    x_t ~ N(sqrt(ab) M 1, Sigma), Sigma = ab S^2 1 1^T + (1 - ab) I, and
    E[eps | x_t] = sqrt(1 - ab) Sigma^-1 (x_t - sqrt(ab) M 1) (Gaussian conditioning)."""
    out = torch.empty_like(x, dtype=torch.float64)
    for i, ti in enumerate(t.tolist()):
        ab = SCHED.alpha_bar[ti]
        ones, eye = torch.ones(3, 3, dtype=torch.float64), torch.eye(3, dtype=torch.float64)
        sigma = ab * S ** 2 * ones + (1 - ab) * eye
        r = x[i].double() - ab.sqrt() * M  # (3, H, W)
        out[i] = (1 - ab).sqrt() * torch.einsum("cd,dhw->chw", torch.linalg.inv(sigma), r)
    return out


def optimal_eps_1(y, t, scale=math.sqrt(3)):
    """E[eps | y_t] of the 1-channel diffusion of y_0 = scale g ~ N(scale M, scale^2 S^2)."""
    ab = gather(SCHED.alpha_bar, t, y.double())
    var = ab * scale ** 2 * S ** 2 + 1 - ab
    return (1 - ab).sqrt() * (y.double() - ab.sqrt() * scale * M) / var


def test_grey_coordinate_of_grey_images_is_sqrt3_g():
    g = torch.randn(2, 1, 4, 4)
    torch.testing.assert_close(grey_coordinate(g.expand(-1, 3, -1, -1)), math.sqrt(3) * g)


def test_wrapper_around_the_1_channel_optimum_is_the_3_channel_optimum():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 5, 5, generator=gen, dtype=torch.float64) * 1.3
    t = torch.tensor([0, 1, 50, 400, 800, 999])
    got = grey_eps(optimal_eps_1, SCHED)(x, t)
    torch.testing.assert_close(got, optimal_eps_3(x, t), rtol=1e-9, atol=1e-9)


def test_negative_controls_fail_the_optimum_test():
    """Dropping the orthogonal term, or training the 1-channel model on g instead of sqrt(3) g,
    each gives another eps: the test above would see it."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 5, 5, generator=gen, dtype=torch.float64)
    t = torch.tensor([10, 300, 600, 900])
    want = optimal_eps_3(x, t)

    def no_perp(x, t):
        return (optimal_eps_1(grey_coordinate(x), t) / math.sqrt(3)).expand(-1, 3, -1, -1)

    unscaled = grey_eps(lambda y, t: optimal_eps_1(y, t, scale=1.0), SCHED)
    for wrong in (no_perp, unscaled):
        assert (wrong(x, t) - want).abs().max() > 0.05


def _ddim_grey_part(eps_model, noise, **conv):
    """Run the course's DDIM step by step, returning (largest channel spread of any x0_hat,
    the final sample)."""
    ts = ddim_timesteps(1000, 50, offset=1)
    x, spread = noise.clone(), 0.0
    with torch.inference_mode():
        for t, (a_t, a_prev) in zip(ts, ddim_alpha_bars(SCHED, ts, **conv)):
            eps = eps_model(x, torch.full((len(x),), t)).float()
            out = ddim_step(eps, x, a_t, a_prev, clip_x0=True)
            spread = max(spread, float((out.pred_original_sample - out.pred_original_sample.mean(
                1, keepdim=True)).abs().max()))
            x = out.prev_sample
    return spread, x


def _spread(x):
    return float((x - x.mean(1, keepdim=True)).abs().max())


@pytest.fixture(scope="module")
def tiny_grey():
    torch.manual_seed(0)
    unet = build_unet(TINY_GREY).eval()
    noise = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    return grey_eps(eps_fn(unet), SCHED), noise


def test_ddim_from_colour_noise_gives_grey_images(tiny_grey):
    """Every x0-prediction is grey; a grid that ends at alpha_bar = 1 returns grey images, with
    eta = 0 and eta = 1. (Not the course's "t-1" convention, which reads alpha_bar[t-1] while
    the model is told t: the wrapper's orthogonal scale is then that of the neighbouring step.)"""
    eps_model, noise = tiny_grey
    spread, _ = _ddim_grey_part(eps_model, noise, **p2.CONVENTIONS["t"])
    # float32 rounding of x_t (~1e-7) divided by sqrt(alpha_bar_981) = 0.0064 at the first step
    assert spread < 1e-4
    for eta in (0.0, 1.0):
        x = ddim_sample(eps_model, SCHED, timesteps=ddim_timesteps(1000, 50, offset=1), eta=eta,
                        noise=noise, clip_x0=True, set_alpha_to_one=True,
                        generator=torch.Generator().manual_seed(0)).sample
        assert _spread(x) < 1e-5 and x.std() > 0.1


def test_course_convention_keeps_only_the_last_noise_level_in_colour(tiny_grey):
    """The course's grid ends at alpha_bar_0 < 1: the output's colour part is then exactly the
    starting noise's, scaled by sqrt(1 - alpha_bar_0) / sqrt(1 - alpha_bar_981) (eta = 0)."""
    eps_model, noise = tiny_grey
    x = p2.ddim_faces(eps_model, noise, convention="t")
    ab = SCHED.alpha_bar
    scale = float((1 - ab[0]).sqrt() / (1 - ab[981]).sqrt())
    perp = lambda v: v - v.mean(1, keepdim=True)
    torch.testing.assert_close(perp(x), scale * perp(noise), rtol=1e-4, atol=1e-5)
    assert 1e-3 < _spread(x) < 0.05


def test_without_the_projection_colour_noise_stays():
    """Negative control: the same 1-channel model applied to each channel separately (no
    projection) leaves coloured x0-predictions."""
    torch.manual_seed(0)
    unet = eps_fn(build_unet(TINY_GREY).eval())
    noise = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))

    def per_channel(x, t):
        return torch.cat([unet(x[:, c:c + 1], t) for c in range(3)], 1)
    spread, x = _ddim_grey_part(per_channel, noise, **p2.CONVENTIONS["t"])
    assert spread > 0.01 and _spread(x) > 0.01


def test_committed_face_model_is_grey():
    """The committed checkpoint is a 1-channel model sampled through the projection."""
    eps_model, unet = p2.load_face_model(ROOT / "checkpoints" / "p2_faces")
    assert unet.config.in_channels == 1
    noise = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    x = ddim_sample(eps_model, SCHED, timesteps=ddim_timesteps(1000, 5, offset=1), noise=noise,
                    clip_x0=True, set_alpha_to_one=True).sample
    assert _spread(x) < 1e-5


def test_model_text_says_how_the_grey_model_is_sampled():
    s = p2.FaceSetup(None, torch.zeros(10, 3, 32, 32), [f"{i:02d}" for i in range(10)], None, "",
                     "embedded face DDPM (p2_faces)",
                     facts={"grey": True, "params": 686769, "steps": 4000, "train_images": 200})
    text = p2.model_text(s, convention="t")
    assert "0.69M parameters, trained for 4,000 steps on 200 grey" in text
    assert "exactly grey" in text and "= 0.01$" in text
    assert "= 0.01$" not in p2.model_text(s, convention="t-1")
    course = p2.FaceSetup(None, torch.zeros(10, 3, 256, 256), ["00"] * 10, None, "", "course UNet")
    assert p2.model_text(course) == "Model: course UNet; 10 noises of shape 3 × 256 × 256."

"""P1's GPU preset: the UNet public solutions train (tens of millions of parameters), its
training options from the preset, one resumable state, and per-process batches under
accelerate launch (process 0 draws what a single-process run draws)."""
import json

import torch

from hw2lib.nets.presets import P1_GPU_FLOPS_PER_IMAGE, P1_GPU_UNET, PRESETS
from hw2lib.nets.unet import build_unet, n_params


def test_gpu_unet_size_and_flops():
    from torch.utils.flop_counter import FlopCounterMode
    with torch.device("meta"):
        m = build_unet(P1_GPU_UNET)
        with FlopCounterMode(display=False) as fc:
            m(torch.randn(1, 3, 28, 28), torch.tensor([5]), class_labels=torch.tensor([1]))
    assert 20e6 < n_params(m) < 40e6
    assert abs(fc.get_total_flops() - P1_GPU_FLOPS_PER_IMAGE) / P1_GPU_FLOPS_PER_IMAGE < 0.01


def test_train_p1_gpu_preset_fills_what_the_user_left_out(hw2_data_pristine, tmp_path):
    from hw2lib import cli
    out = tmp_path / "p1"
    assert cli.main(["train", "p1", "--mode", "course", "--data", str(hw2_data_pristine),
                     "--preset", "gpu", "--steps", "1", "--batch-size", "2", "--precision", "fp32",
                     "--out", str(out), "--cache-dir", str(tmp_path / "cache")]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert tuple(cfg["unet"]["block_out_channels"]) == P1_GPU_UNET.block_out_channels
    man = json.loads((out / "manifest.json").read_text())
    tc = man["train_config"]
    gpu = PRESETS["p1"].variants["gpu"].train
    assert tc["lr"] == gpu.lr and tc["ema_decay"] == gpu.ema_decay
    assert tc["steps"] == 1 and tc["batch_size"] == 2  # given options win over the preset


def test_each_process_draws_its_own_batch():
    from hw2lib.diffusion import derived_seed
    from hw2lib.train.loop import _step_generator
    draw = lambda g: torch.randint(0, 10**6, (4,), generator=g)  # noqa: E731
    single = torch.randint(0, 10**6, (4,), generator=torch.Generator().manual_seed(derived_seed(0, 7)))
    assert torch.equal(draw(_step_generator(0, 7, 0)), single)
    assert not torch.equal(draw(_step_generator(0, 7, 1)), single)

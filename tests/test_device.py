"""DEVICE=cuda: every course command and every notebook's setup takes it, and on a machine
without CUDA each fails at once (exit 2, one message) instead of after minutes of loading."""
import time

import pytest
import torch

from hw2lib import cli
from hw2lib.errors import UserError

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")

COMMANDS = [
    ["p1", "sample", "--out", "OUT", "--device", "cuda"],
    ["p2", "sample", "--noise-dir", "N", "--out", "OUT", "--device", "cuda"],
    ["p3", "zeroshot", "--mode", "course", "--data", "D", "--pretrained", "W", "--device", "cuda"],
    ["ti", "train", "--sd", "S", "--json", "J", "--refs", "R", "--out", "O", "--device", "cuda"],
    ["ti", "generate", "--sd", "S", "--json", "J", "--embeds", "E", "--out", "O", "--device", "cuda"],
    ["ti", "score", "--json", "J", "--out", "O", "--refs", "R", "--device", "cuda"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_course_commands_refuse_cuda_at_once(argv, capsys):
    t0 = time.perf_counter()
    assert cli.main(argv) == 2
    assert "no CUDA GPU" in capsys.readouterr().err  # the device, not the (absent) inputs
    assert time.perf_counter() - t0 < 5


def test_notebook_setups_refuse_cuda(hw2_data_pristine):
    from hw2lib import p1, p2
    from hw2lib.personalize import sd, setups
    from hw2lib.zeroshot import notebook as zeroshot
    calls = [lambda: p1.load("absent", device="cuda"),
             lambda: p2.setup("course", data_dir=hw2_data_pristine, unet_module="UNet.py",
                              device="cuda"),
             lambda: zeroshot.load_model("course", pretrained="x.pt", device="cuda"),
             lambda: setups.load("embedded", t2i_ckpt="a", ti_ckpt="b", clip_ckpt="c",
                                 device="cuda"),
             lambda: setups.load("course", data_dir=hw2_data_pristine, sd="x.ckpt",
                                 device="cuda"),
             lambda: sd.load_sd("sd-v1-4.ckpt", device="cuda")]
    for call in calls:
        with pytest.raises(UserError, match="no CUDA GPU"):
            call()


def test_autocast_is_cuda_only():
    from hw2lib.precision import autocast, weights_dtype
    with autocast("cpu"):
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    assert weights_dtype("cpu") == torch.float32 and weights_dtype("cuda") == torch.float16

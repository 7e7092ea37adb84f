"""Training presets of the P1 digit DDPM, as data: ``cpu`` (the embedded default, sized for 2
AVX2 cores) and ``gpu`` (course mode on a GPU, the size public solutions train).

The GPU UNet is DDPM's CIFAR-10 layout cut to three levels for 28x28 digits (28, 14, 7):
channels 128/256/256, two ResNet blocks per level, self-attention at 14x14 and 7x7; 27.2M
parameters, 9.5 GFLOP per image forward (torch's FlopCounterMode, 2 FLOPs per multiply-add).
30,000 steps of 256 digits are 57 passes over the course's ~135k training digits and
30,000 x 256 x 3 x 9.5 GFLOP = 220 PFLOP: about 90 minutes on one GPU at an effective
40 TFLOP/s of bf16 (an RTX 3090/A10-class GPU; ~25 minutes on an A100 at 150 TFLOP/s). The
README states the same figures, and the rehearsal (``make rehearsal``) measures the rest.
"""
from __future__ import annotations

from .unet import UNetConfig

P1_GPU_UNET = UNetConfig(sample_size=28, block_out_channels=(128, 256, 256), layers_per_block=2,
                         down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                         up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
                         attention_head_dim=64, norm_num_groups=32, num_class_embeds=21)

# Per preset: the train p1 options a user leaves out. With `accelerate launch` on k GPUs each
# process draws its own batch of batch_size (an effective batch of k x batch_size).
P1_TRAIN = {
    "cpu": dict(steps=5235, batch_size=64, lr=1e-3, precision="fp32", warmup=200,
                ema_decay=0.999),
    "gpu": dict(steps=30_000, batch_size=256, lr=2e-4, precision="bf16", warmup=1000,
                ema_decay=0.9999),
}
P1_GPU_FLOPS_PER_IMAGE = 9.53e9  # forward, 28x28, batch 1 (see the module docstring)

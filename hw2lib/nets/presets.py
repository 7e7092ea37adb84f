"""Every architecture and training preset of the project, as data (frozen dataclasses).

The CLI's ``train <model>`` defaults, ``make checkpoints`` and the notebooks all read them
from here; a preset is changed here and nowhere else. Each training preset reproduces the
committed checkpoint of its folder (its manifest's ``train_config``), apart from
``max_minutes``, the time limit a run was given.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..train.loop import TrainConfig
from .unet import UNetConfig

# ---------------------------------------------------------------------------- architectures
# P1: sized for 2 AVX2 cores in fp32: 1.5M parameters, attention only at 7x7; 21 class labels
# (10 digits x 2 sets + the null label of guidance dropout).
P1_UNET = UNetConfig(sample_size=28, block_out_channels=(24, 48, 96), layers_per_block=1,
                     down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                     up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
                     attention_head_dim=24, norm_num_groups=8, num_class_embeds=21)

# P1 on a GPU (course mode, ``train p1 --preset gpu``): DDPM's CIFAR-10 layout cut to three levels
# for 28x28 digits (28, 14, 7): channels 128/256/256, two ResNet blocks per level, self-attention
# at 14x14 and 7x7; 27.2M parameters, 9.5 GFLOP per image forward (torch's FlopCounterMode, 2
# FLOPs per multiply-add). 30,000 steps of 256 digits are 57 passes over the course's ~135k
# training digits and 30,000 x 256 x 3 x 9.5 GFLOP = 220 PFLOP: about 90 minutes on one GPU at
# an effective 40 TFLOP/s of bf16 (~25 minutes on an A100 at 150 TFLOP/s). With
# ``accelerate launch`` on k GPUs each process draws its own batch (an effective k x 256).
P1_GPU_UNET = UNetConfig(sample_size=28, block_out_channels=(128, 256, 256), layers_per_block=2,
                         down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                         up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
                         attention_head_dim=64, norm_num_groups=32, num_class_embeds=21)
P1_GPU_FLOPS_PER_IMAGE = 9.53e9  # forward, 28x28, batch 1

# P2 (embedded): one channel, the grey coordinate x . u of the 3-channel faces (sampled in three
# channels through hw2lib.diffusion.grey_eps: exactly grey); 0.69M parameters, 32x32, attention
# only at 8x8. Measured at equal CPU time (1 thread, lr 1e-3, EMA): these widths for 2,000 steps
# reach an eps loss of 0.0165 on the training faces (3-channel, averaged over t), widths
# 24/48/96 (1.54M parameters, 1.9x the time per step) for 1,000 steps 0.0192; the "faces"
# preset's 4,000 steps reach 0.0110 in 1,274 s of one core (0.30 s a step on one free core,
# 0.20 s on two; checkpoints/README.md has the table).
FACE_UNET = UNetConfig(sample_size=32, in_channels=1, out_channels=1,
                       block_out_channels=(16, 32, 64), layers_per_block=1,
                       down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
                       attention_head_dim=16, norm_num_groups=8)


# ----------------------------------------------------------------------------- training
@dataclass(frozen=True)
class Preset:
    """How one model of the project is trained: ``python -m hw2lib train <name>``.

    :func:`hw2lib.recipes.train` runs it. ``needs``: options naming
    another preset's output folder (trained first by ``make checkpoints``); ``options``: the
    model's own settings and their defaults; ``epochs``: for models trained in epochs (the
    steps then follow from the data size); ``unet``: the architecture, where it is a preset's;
    ``variants``: other presets of the same model (``train <name> --preset <variant>``)."""
    name: str
    help: str
    out: str
    train: TrainConfig
    data: str = "digits"  # "digits" (--mode aware), "embedded digits", or "none"
    export: str = "ema"  # which weights are exported: "ema" or "model"
    needs: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    epochs: int | None = None
    unet: UNetConfig | None = None
    variants: dict = field(default_factory=dict)


# Min-SNR-5 and one guidance null per set: the recipe the appendix's ablation measured best
# (issue 18; checkpoints/README.md), 5,000 steps: about 80 minutes of one CPU core
_P1 = Preset("p1", "the class-conditional digit DDPM (~80 min of one CPU core)",
             "checkpoints/p1_ddpm",
             TrainConfig(steps=5000, batch_size=64, lr=1e-3, warmup=200, p_uncond=0.15),
             unet=P1_UNET, options={"snr_gamma": 5.0, "guidance_null": "per-set"})
_P1_GPU = replace(_P1, help="the P1 DDPM at the size public solutions train (course mode, GPU)",
                  train=TrainConfig(steps=30_000, batch_size=256, lr=2e-4, warmup=1000,
                                    ema_decay=0.9999, p_uncond=0.15, precision="bf16"),
                  unet=P1_GPU_UNET)

PRESETS = {p.name: p for p in (
    Preset("classifier", "the digit CNN that scores P1 samples", "checkpoints/digit_classifier",
           TrainConfig(steps=0, batch_size=128, lr=2e-3, weight_decay=1e-4,
                       lr_schedule="onecycle", clip_grad=None, ema_decay=0.0, p_uncond=0.0,
                       channels_last=False),
           export="model", epochs=20, options={"reblend": True}),
    replace(_P1, variants={"cpu": _P1, "gpu": _P1_GPU}),
    Preset("faces", "the unconditional grey face DDPM of P2 (embedded mode)",
           "checkpoints/p2_faces",
           TrainConfig(steps=4000, batch_size=32, lr=1e-3, warmup=200),
           data="none", options={"note": ""}),
    Preset("clip", "the embedded CLIP of P3 (ClipLoss on captioned digits)", "checkpoints/p3_clip",
           TrainConfig(steps=6000, batch_size=128, lr=1e-3, warmup=200, channels_last=False),
           data="embedded digits"),
    Preset("t2i", "the embedded text-to-image scene model of P3b", "checkpoints/p3_t2i",
           TrainConfig(steps=3000, batch_size=64, lr=1e-3, warmup=200, p_uncond=0.1),
           data="embedded digits", needs={"clip": "clip"}, options={"recolour": 0.0, "init": ""}),
    Preset("ti", "textual inversion of the two new concepts on the embedded scene model "
                 "(course SD: python -m hw2lib ti train)", "checkpoints/p3_ti",
           TrainConfig(steps=300, batch_size=64, lr=2e-3, warmup=20, ema_decay=0.0, p_uncond=0.0,
                       channels_last=False, save_every=100),
           data="embedded digits", export="model", needs={"t2i": "t2i"},
           options={"snr_gamma": 0.0, "target_w": 0.0, "t_min": 0, "relative": True,
                    "num_vectors": 4}),
)}

# what each option means (the CLI's help)
OPTION_HELP = {
    "clip": "the embedded CLIP whose text tower conditions the scene model",
    "t2i": "the embedded scene model the concepts are learned on",
    "recolour": "add this share of the training cells again, recoloured in random two-colour "
                "schemes named by their captions (0: none)",
    "init": "start from this trained scene model's folder (fine-tuning; empty: from scratch)",
    "snr_gamma": "Min-SNR loss weighting with this gamma (0: the plain eps loss)",
    "guidance_null": "guidance dropout's null label: 'shared' (one for all classes) or "
                     "'per-set' (one per digit set: guidance then amplifies the digit only)",
    "target_w": "fit the guided prediction (1 + w) eps(c) - w eps(null) with this w "
                "(0: the conditional one)",
    "t_min": "draw training timesteps from [t_min, 1000) only (0: all)",
    "relative": "divide each sample's loss by the unconditional prediction's "
                "(--no-relative: the plain eps loss)",
    "num_vectors": "embedding vectors per token (diffusers' multi-vector format)",
    "note": "a sentence for the manifest: how this run was made (where, beside what)",
    "reblend": "blend a quarter of each batch's MNIST-M-like digits afresh with training-band "
               "photo crops (embedded mode; --no-reblend: the stored images only)",
}

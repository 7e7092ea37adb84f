"""The rehearsal's inputs: a course-shaped ``hw2_data`` tree at the course's image sizes and file
formats (counts reduced), and the course's real architectures with random weights in the
course's file formats: a face ``UNet.py`` of the course's size with its ``UNet.pt``, the course
LeNet's ``Classifier.pth``, CLIP ViT-B/32 weights in OpenAI's key layout, and Stable Diffusion
v1.x both as a single ``sd-v1-4.ckpt`` (LDM layout) and as a diffusers folder.

Nothing here is a trained model: the rehearsal measures cost and checks that every command and
the report run end to end on inputs of the right shapes, never quality.
"""
from __future__ import annotations

import json
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

# The course's UNet.py is not public; its size is that of DDPM's 256x256 face model (~114M
# parameters), so the stand-in is diffusers' UNet2DModel with google/ddpm-celebahq-256's config.
FACE_UNET_FULL = dict(sample_size=256, in_channels=3, out_channels=3, layers_per_block=2,
                      block_out_channels=[128, 128, 256, 256, 512, 512],
                      down_block_types=["DownBlock2D"] * 4 + ["AttnDownBlock2D", "DownBlock2D"],
                      up_block_types=["UpBlock2D", "AttnUpBlock2D"] + ["UpBlock2D"] * 4)
FACE_UNET_SMALL = dict(FACE_UNET_FULL, layers_per_block=1, block_out_channels=[8, 8, 16, 16, 32, 32],
                       norm_num_groups=8)

UNET_PY = '''\
"""Rehearsal stand-in for the course's face UNet.py: class UNet, called as model(x, t) with
integer t in 0..999, its weights a plain state_dict (UNet.pt). Written by hw2lib.rehearse."""
import torch
from diffusers import UNet2DModel

CONFIG = {config}


class UNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = UNet2DModel(**CONFIG)

    def forward(self, x, t):
        return self.net(x, t).sample
'''

# 50 CIFAR-100 fine classes, the course's first and last ("0": apple, "49": willow_tree)
CLASSES = ("apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
           "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach "
           "couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster "
           "house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree "
           "motorcycle willow_tree").split()

TI_SPEC = {
    "0": {"src_image": "dog", "token_name": "<new1>",
          "prompt": ["A <new1> shepherd posing proudly on a hilltop with Mount Fuji in the background.",
                     "A <new1> perched on a park bench with the Colosseum looming behind."],
          "prompt_4_clip_eval": ["A dog shepherd posing proudly on a hilltop with Mount Fuji in the background.",
                                 "A dog perched on a park bench with the Colosseum looming behind."],
          "baseline": [[79, 34], [74, 35]]},
    "1": {"src_image": "David Revoy", "token_name": "<new2>",
          "prompt": ["The streets of Paris in the style of <new2>."],
          "prompt_4_clip_eval": ["The streets of Paris in the style of David Revoy."],
          "baseline": [[61, 30]]},
}


@dataclass(frozen=True)
class Scale:
    """Counts and model sizes of a rehearsal; ``full`` is what ``make rehearsal`` runs."""
    name: str = "full"
    digits_per_set: int = 200  # course: ~45k MNIST-M + ~90k SVHN training digits
    zeroshot_images: int = 100  # course: ~2,500 (50 per class)
    classes: int = 50  # zero-shot classes (the course's 50)
    p1_per_digit: int = 50  # images per digit and set written by hw2_1.sh (the course's 50)
    zeroshot_size: int = 32  # CIFAR-100's 32x32 (resized to 224 by CLIP's preprocessing)
    refs_per_concept: int = 2  # course: 5; each costs VAE encodes at 512 px (1.1 TFLOP, twice: mirrored)
    ref_size: int = 512
    face_unet: str = "full"  # "full": 114M parameters; "small": the same layout, narrow
    sd: str = "full"  # "full": SD v1.4's configs; "reduced": the same layout, narrow (tests)
    clip_model: str = "ViT-B-32"


FULL = Scale()
SMALL = Scale(name="small", digits_per_set=120, zeroshot_images=10, classes=5, p1_per_digit=2,
              refs_per_concept=2,
              ref_size=64, face_unet="small", sd="reduced")
SCALES = {"full": FULL, "small": SMALL}


def _png(path: Path, arr: np.ndarray, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format=fmt)


def _image(rng, h: int, w: int) -> np.ndarray:
    """A smooth random colour image (cheap to encode, not flat like zeros)."""
    small = rng.integers(0, 256, (max(2, h // 16), max(2, w // 16), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))


def write_tree(root, scale: Scale = FULL, seed: int = 0) -> Path:
    """``hw2_data`` in the course's layout (hw2_data_layout.md), at the course's image sizes."""
    import torch
    root = Path(root)
    rng = np.random.default_rng(seed)
    for name in ("mnistm", "svhn"):
        base = root / "digits" / name
        rows = ["image_name,label"]
        for i in range(scale.digits_per_set):
            fname = f"{i:05d}.png"
            _png(base / "data" / fname, _image(rng, 28, 28))
            rows.append(f"{fname},{i % 10}")
        (base / "train.csv").write_text("\n".join(rows) + "\n")
    g = torch.Generator().manual_seed(seed)
    face = root / "face"
    (face / "noise").mkdir(parents=True, exist_ok=True)
    for i in range(10):
        torch.save(torch.randn(1, 3, 256, 256, generator=g), face / "noise" / f"{i:02d}.pt")
        _png(face / "GT" / f"{i:02d}.png", _image(rng, 256, 256))
    zs = root / "clip_zeroshot"
    zs.mkdir(parents=True, exist_ok=True)
    classes = CLASSES[:scale.classes - 1] + CLASSES[-1:]
    (zs / "id2label.json").write_text(json.dumps({str(i): c for i, c in enumerate(classes)}))
    for k in range(scale.zeroshot_images):
        c = k % len(classes)
        _png(zs / "val" / f"{c}_{450 + k // len(classes)}.png",
             _image(rng, scale.zeroshot_size, scale.zeroshot_size))
    ti = root / "textual_inversion"
    ti.mkdir(parents=True, exist_ok=True)
    (ti / "input.json").write_text(json.dumps(TI_SPEC, indent=1))
    for d in ("0", "1", "cat"):
        for j in range(scale.refs_per_concept):
            _png(ti / d / f"{j}.jpg", _image(rng, scale.ref_size, scale.ref_size), "JPEG")
    return root


def write_face_unet(data_root, module_dir, scale: Scale = FULL, seed: int = 0) -> tuple[Path, int]:
    """``<module_dir>/UNet.py`` (the architecture) and ``hw2_data/face/UNet.pt`` (a plain
    state_dict). Returns (UNet.py, parameter count)."""
    import importlib.util

    import torch
    cfg = FACE_UNET_FULL if scale.face_unet == "full" else FACE_UNET_SMALL
    module = Path(module_dir) / "UNet.py"
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(UNET_PY.format(config=textwrap.indent(json.dumps(cfg, indent=4), "").strip()))
    spec = importlib.util.spec_from_file_location("rehearsal_unet", module)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(seed)
    net = mod.UNet()
    torch.save(net.state_dict(), Path(data_root) / "face" / "UNet.pt")
    return module, sum(p.numel() for p in net.parameters())


def write_course_classifier(path, seed: int = 0) -> Path:
    """The course LeNet's ``Classifier.pth``: ``{"state_dict": ...}``."""
    import torch

    from ..classifier import CourseLeNet
    torch.manual_seed(seed)
    torch.save({"state_dict": CourseLeNet().state_dict()}, path)
    return Path(path)


def write_clip(path, scale: Scale = FULL, seed: int = 0) -> tuple[Path, int]:
    """ViT-B/32 weights in OpenAI's key layout (``visual.transformer.resblocks.*``,
    ``token_embedding``, ``text_projection``, ``logit_scale``...) as a plain state-dict file, as
    open_clip's ``open_clip_pytorch_model.bin`` of the OpenAI weights holds them (OpenAI's own
    ``ViT-B-32.pt`` is a TorchScript archive of the same tensors)."""
    import open_clip
    import torch
    torch.manual_seed(seed)
    model = open_clip.create_model(scale.clip_model, pretrained=None, force_quick_gelu=True)
    sd = model.state_dict()
    torch.save(sd, path)
    return Path(path), sum(v.numel() for v in sd.values())


def write_sd(models_dir, scale: Scale = FULL, seed: int = 0) -> dict:
    """``sd-v1-4.ckpt`` (LDM layout, fp32, ``{"state_dict": ...}``) and the same weights as a
    diffusers folder ``sd-v1-4/``. Returns paths and parameter counts."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    from ..personalize import sd_ldm
    from ..personalize.sd import SD_V1_CONFIGS
    from ..personalize.tiny import clip_tokenizer
    models_dir = Path(models_dir)
    cfg = SD_V1_CONFIGS
    if scale.sd == "reduced":
        cfg = sd_ldm.write_reduced_configs(SD_V1_CONFIGS, models_dir / "sd_configs")
    comps = sd_ldm.random_components(cfg, seed=seed)
    ckpt = sd_ldm.write_ckpt(comps, models_dir / "sd-v1-4.ckpt", global_step=470000)
    sched = DDIMScheduler.from_pretrained(str(cfg), subfolder="scheduler")
    pipe = StableDiffusionPipeline(**comps, tokenizer=clip_tokenizer(), scheduler=sched,
                                   safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    folder = models_dir / "sd-v1-4"
    pipe.save_pretrained(str(folder))
    counts = {k: sum(p.numel() for p in m.parameters()) for k, m in comps.items()}
    return {"ckpt": str(ckpt), "folder": str(folder),
            "config": str(cfg) if scale.sd == "reduced" else "", "params": counts}


def build(out, scale: Scale = FULL, seed: int = 0) -> dict:
    """Everything a rehearsal reads, under ``out``; returns (and writes ``inputs.json``) the
    paths and parameter counts."""
    out = Path(out)
    data = write_tree(out / "hw2_data", scale, seed)
    models = out / "models"
    models.mkdir(parents=True, exist_ok=True)
    unet_py, face_params = write_face_unet(data, models, scale, seed)
    clip_path, clip_params = write_clip(models / "ViT-B-32.pt", scale, seed)
    info = {"scale": asdict(scale), "data": str(data), "unet_module": str(unet_py),
            "face_params": face_params, "classifier": str(write_course_classifier(
                models / "Classifier.pth", seed)), "clip_weights": str(clip_path),
            "clip_params": clip_params, "sd": write_sd(models, scale, seed)}
    (out / "inputs.json").write_text(json.dumps(info, indent=1))
    return info

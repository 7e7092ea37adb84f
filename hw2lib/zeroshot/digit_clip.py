"""The embedded CLIP: a 3.9M-parameter open_clip model (config ``hw2-digit-clip``) trained from
scratch with open_clip's ``ClipLoss`` on captioned digits of the embedded MNIST-M-like and
SVHN-like training splits.

Captions vary the digit (word or numeral), the domain (handwritten on a picture vs house
number), the colour and the sentence form, with neutral filler words, so that the text tower
learns that the digit word carries the class. No caption contains the word "photo", so the
zero-shot prompts ("a photo of a seven.") never occur in training (a test checks it).
"""
from __future__ import annotations

import colorsys
import json
from pathlib import Path

import numpy as np
import torch

from .model import CONFIG_DIR, DIGIT_CLIP, register_configs
from .templates import DIGIT_WORDS

DOMAIN = {  # (adjectives, nouns, scene phrases) per digit set
    "mnistm": (("handwritten", "hand-drawn", "pen-written", "scribbled"),
               ("handwritten digit", "hand-drawn numeral", "pen stroke digit"),
               ("over a {c} picture", "on a {c} texture", "drawn across a {c} image")),
    "svhn": (("house-number", "street-number", "printed", "door-number"),
             ("house number", "street-view house number", "door number sign"),
             ("on a {c} plate", "on a {c} house wall", "on a {c} street sign")),
}
FORMS = (
    "{n}",
    "the number {n}",
    "{adj} {n}",
    "a {adj} {n}",
    "a {c} {adj} {n}",
    "{adj} {n} {scene}",
    "an image showing the {noun} {n}",
    "the {noun} {n} {scene}",
    "{n} in {c} tones",
    "picture of a {adj} {n}",
    "a {filler} {adj} {n}",
    "{filler} crop: {noun} {n}",
    "digit {n}, {adj}",
)
FILLERS = ("neat", "old", "clear", "simple", "tiny", "large", "sharp", "faded", "centered",
           "close-up", "cropped", "scanned", "typical", "plain")


def colour_name(img: np.ndarray) -> str:
    """A colour word for a uint8 (H, W, 3) image: from the mean colour's hue, or grey/black/white
    when it is unsaturated."""
    return colour_word(*(img.reshape(-1, 3).mean(0) / 255))


def colour_word(r: float, g: float, b: float) -> str:
    """A colour word for an RGB colour in [0, 1]: its hue, or grey/black/white when unsaturated."""
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    if v < 0.25:
        return "black"
    if s < 0.18:
        return "white" if v > 0.8 else "grey"
    names = ((20, "red"), (45, "orange"), (70, "yellow"), (160, "green"), (200, "teal"),
             (255, "blue"), (290, "purple"), (340, "pink"), (361, "red"))
    return next(name for edge, name in names if h * 360 < edge)


def caption(set_name: str, digit: int, img: np.ndarray, rng: np.random.Generator) -> str:
    adjs, nouns, scenes = DOMAIN[set_name]
    c = colour_name(img)
    n = DIGIT_WORDS[digit] if rng.random() < 0.6 else str(digit)
    form = FORMS[rng.integers(len(FORMS))]
    return form.format(n=n, adj=adjs[rng.integers(len(adjs))], noun=nouns[rng.integers(len(nouns))],
                       scene=scenes[rng.integers(len(scenes))].format(c=c), c=c,
                       filler=FILLERS[rng.integers(len(FILLERS))])


def captioned_images(sets: dict, *, seed: int = 0, per_image: int = 4):
    """(uint8 images (N, 28, 28, 3), captions (N, per_image)) of the training splits."""
    rng = np.random.default_rng(seed)
    images, caps = [], []
    for name, ds in sets.items():
        for img, d in zip(ds.x_train, ds.y_train):
            images.append(img)
            caps.append([caption(name, int(d), img, rng) for _ in range(per_image)])
    return np.stack(images), caps


def eval_set(sets: dict):
    """(uint8 images, digit labels) of the held-out test splits of both sets."""
    xs = [ds.x_test for ds in sets.values()]
    ys = [ds.y_test for ds in sets.values()]
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64)


def to_clip_tensor(images: np.ndarray, mean, std) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> normalised float (N, 3, H, W): open_clip's eval transform for
    images already at the model's size (tested against it)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def train(sets: dict, out_dir, cfg, *, command: str = "", progress: bool = True) -> Path:
    """Train the embedded CLIP with ``ClipLoss`` (symmetric InfoNCE) and export it into
    ``out_dir``: ``model.safetensors`` (fp16), ``loss.json``, ``manifest.json``."""
    import open_clip
    from ..train import export_checkpoint, fit
    out_dir = Path(out_dir)
    register_configs()
    torch.manual_seed(cfg.seed)
    model, _, _ = open_clip.create_model_and_transforms(DIGIT_CLIP, pretrained=None)
    tokenizer = open_clip.get_tokenizer(DIGIT_CLIP)
    pcfg = model.visual.preprocess_cfg
    images, caps = captioned_images(sets, seed=cfg.seed)
    x_all = to_clip_tensor(images, pcfg["mean"], pcfg["std"])
    tokens = tokenizer([c for cs in caps for c in cs]).view(len(caps), len(caps[0]), -1)
    loss_fn = open_clip.ClipLoss()

    def batch_loss(model, g):
        idx = torch.randint(0, len(x_all), (cfg.batch_size,), generator=g)
        which = torch.randint(0, tokens.shape[1], (cfg.batch_size,), generator=g)
        # a shift of up to 2 pixels: the digits are not always centred in the test splits
        dx, dy = torch.randint(-2, 3, (2,), generator=g).tolist()
        x = torch.roll(x_all[idx], shifts=(dy, dx), dims=(2, 3))
        image_features, text_features, logit_scale = model(x, tokens[idx, which])
        return loss_fn(image_features, text_features, logit_scale)

    res = fit(model, batch_loss, cfg, out_dir / "state", progress=progress, desc="train clip")
    weights = res.ema if cfg.ema_decay > 0 else res.model
    export_checkpoint(out_dir, res, cfg, module=weights, command=command, sets=sets,
                      config={"model": DIGIT_CLIP, "open_clip_config":
                              json.loads((CONFIG_DIR / f"{DIGIT_CLIP}.json").read_text())},
                      params=sum(p.numel() for p in weights.parameters()),
                      weights="ema" if cfg.ema_decay > 0 else "model", n_train_images=len(images))
    return out_dir


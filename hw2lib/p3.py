"""Problem 3a: CLIP zero-shot classification, on the course's 50 CIFAR-100 classes (ViT-B/32
with OpenAI's weights from a local file) or on the embedded digits (the project's CLIP)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .clip import DIGIT_WORDS, clean_classname, encode_images, template_set, zero_shot
from .clip.zeroshot import ClipModel, ZeroShotResult
from .errors import InputError

COURSE_MODEL = "ViT-B-32"


@dataclass(frozen=True)
class ZeroShotSet:
    images: object  # list of paths (course) or uint8 (N, H, W, 3) (embedded)
    labels: np.ndarray
    classnames: tuple[str, ...]  # cleaned for prompts
    groups: np.ndarray | None = None  # e.g. the digit set of each embedded image


def zeroshot_set(mode: str = "embedded", *, data_dir=None, seed: int = 0,
                 cache_dir=None) -> ZeroShotSet:
    """Course: ``hw2_data/clip_zeroshot/val`` with id2label.json; embedded: the held-out test
    splits of both digit sets, classes named by the digit words."""
    if mode == "course":
        from .data.course import read_clip_zeroshot
        if data_dir is None:
            raise InputError("course mode needs data_dir (the hw2_data folder)")
        d = read_clip_zeroshot(data_dir)
        names = tuple(clean_classname(d.id2label[i]) for i in sorted(d.id2label))
        return ZeroShotSet(list(d.paths), d.labels, names)
    from .clip.embedded import eval_set
    from .data import load_digit_sets
    x, y, groups = eval_set(load_digit_sets("embedded", seed=seed, cache_dir=cache_dir))
    return ZeroShotSet(x, y, DIGIT_WORDS, groups)


def load_model(mode: str = "embedded", *, pretrained=None, ckpt="checkpoints/p3_clip",
               model_name: str = COURSE_MODEL, quick_gelu: bool = True) -> ClipModel:
    """Course: ``model_name`` with the weights file ``pretrained`` (QuickGELU for OpenAI's
    weights); embedded: the project's CLIP from ``ckpt``."""
    if mode == "course":
        from .clip import load_clip
        return load_clip(model_name, pretrained, quick_gelu=quick_gelu)
    from .clip.embedded import load
    return load(ckpt)


def evaluate(clip: ClipModel, data: ZeroShotSet, kinds=("single", "ensemble"), *,
             progress: bool = True) -> dict[str, ZeroShotResult]:
    """One :class:`ZeroShotResult` per template set, from one pass of the image encoder."""
    feats = encode_images(clip, data.images, progress=progress)
    return {k: zero_shot(clip, feats, data.labels, data.classnames, template_set(k))
            for k in kinds}


def accuracy_table(results: dict[str, ZeroShotResult]):
    import pandas as pd
    return pd.DataFrame({k: {"templates": len(template_set(k)), "top-1": r.top1, "top-5": r.topk(5)}
                         for k, r in results.items()}).T


def case_images(data: ZeroShotSet, idx) -> np.ndarray | list:
    """The images at ``idx`` as uint8 arrays (course images are read from disk)."""
    if isinstance(data.images, np.ndarray):
        return data.images[np.asarray(idx)]
    from PIL import Image
    return [np.asarray(Image.open(data.images[i]).convert("RGB")) for i in idx]


def format_accuracies(results: dict[str, ZeroShotResult]) -> str:
    lines = [f"{'templates':10s} {'n':>3s} {'top-1':>7s} {'top-5':>7s}"]
    for k, r in results.items():
        lines.append(f"{k:10s} {len(template_set(k)):3d} {r.top1:7.4f} {r.topk(5):7.4f}")
    return "\n".join(lines)


def write_predictions(path, data: ZeroShotSet, result: ZeroShotResult) -> Path:
    """CSV: image, true label, predicted label (the course's output format plus the truth)."""
    import csv
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "label", "pred"])
        for i, (y, p) in enumerate(zip(result.labels, result.preds)):
            name = Path(data.images[i]).name if not isinstance(data.images, np.ndarray) else str(i)
            w.writerow([name, int(y), int(p)])
    return path

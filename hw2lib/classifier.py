"""Digit classifiers that score generated samples.

* :class:`DigitCNN`: the project's own small CNN, trained on both digit sets' training splits
  (:func:`train_classifier`), reported on their held-out test splits.
* :class:`CourseLeNet`: the course's MNIST-M LeNet, for its ``Classifier.pth``
  (a dict with key ``state_dict``), loaded strictly on the CPU.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import InputError, MissingInputError
from .files import load_state_dict_file, write_text_atomic
from .images import to_model_range
from .weights import load_weights, save_weights


class DigitCNN(nn.Module):
    """28x28 RGB -> 10 logits. Input: float (N, 3, 28, 28) in [-1, 1]. Two 3x3 conv blocks at
    each of 28, 14 and 7 pixels (widths w, 2w, 4w), global average pooling, a linear head."""

    def __init__(self, width: int = 48):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True))
        w = width
        self.features = nn.Sequential(block(3, w), block(w, w), nn.MaxPool2d(2),
                                      block(w, 2 * w), block(2 * w, 2 * w), nn.MaxPool2d(2),
                                      block(2 * w, 4 * w), block(4 * w, 4 * w),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(4 * w, 10))

    def forward(self, x):
        return self.head(self.features(x))


class CourseLeNet(nn.Module):
    """The course's MNIST-M classifier (LeNet-5 on 28x28 RGB); input normalised to [-1, 1]."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, kernel_size=5)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def load_course_classifier(path) -> CourseLeNet:
    """The course's ``Classifier.pth`` (``{"state_dict": ...}``), loaded strictly on the CPU."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"course classifier {path} not found (give the path of "
                                "Classifier.pth)")
    sd = load_state_dict_file(path, key="state_dict")
    model = CourseLeNet()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise InputError(f"{path} does not fit the course LeNet: missing keys {missing}, "
                         f"unexpected keys {unexpected}")
    return model.eval()


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Per image: a small random affine map (rotation up to 12 degrees, scale 0.9-1.1, shift up to
    2 px), random channel order per batch, occasional colour inversion, and a colour jitter
    (:func:`_jitter`)."""
    n = len(x)
    ang = (torch.rand(n, generator=g) * 2 - 1) * (12 * torch.pi / 180)
    scale = 0.9 + 0.2 * torch.rand(n, generator=g)
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * (2 / 14)  # 2 px in [-1, 1] coordinates
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    perm = torch.randperm(3, generator=g)
    x = x[:, perm]
    flip = (torch.rand(n, generator=g) < 0.2).view(-1, 1, 1, 1)
    return _jitter(torch.where(flip, -x, x), g)


def _jitter(x: torch.Tensor, g: torch.Generator, amount: float = 0.3,
            p_grey: float = 0.1) -> torch.Tensor:
    """Per image and channel, a contrast factor in 1 +- ``amount`` and an offset in +-``amount``
    (in [-1, 1] units); a share ``p_grey`` of the images turned grey."""
    n = len(x)
    a = 1 + amount * (torch.rand(n, 3, 1, 1, generator=g) * 2 - 1)
    b = amount * (torch.rand(n, 3, 1, 1, generator=g) * 2 - 1)
    x = (x * a + b).clamp(-1, 1)
    grey = (torch.rand(n, generator=g) < p_grey).view(-1, 1, 1, 1)
    return torch.where(grey, x.mean(1, keepdim=True).expand_as(x), x)


def predict(model: nn.Module, images_uint8: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Predicted digit for each uint8 (N, 28, 28, 3) image."""
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(images_uint8), batch_size):
            out.append(model(to_model_range(images_uint8[i:i + batch_size])).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def accuracy(model: nn.Module, images_uint8: np.ndarray, labels) -> float:
    return float(np.mean(predict(model, images_uint8) == np.asarray(labels)))


def train_classifier(sets: dict, *, epochs: int | None = None, cfg=None, progress: bool = True,
                     state_dir=None, reblend=None, reblend_share: float = 0.25,
                     **overrides) -> tuple[DigitCNN, dict]:
    """Train :class:`DigitCNN` on all training splits of ``sets`` ({name: DigitSet}) with the
    shared loop :func:`hw2lib.train.fit`, resumable from ``state_dir`` (a temporary folder when
    None: not resumable). ``cfg``: the training config (default: the ``classifier`` preset),
    with ``overrides``; ``epochs`` (default the preset's) sets its number of steps.
    ``reblend``: (grey digits, labels) of the embedded MNIST-M-like training split
    (:func:`hw2lib.data.embedded.mnistm_train_digits`); a share ``reblend_share`` of every
    batch is then those digits blended afresh with training-band photo crops, so the CNN sees
    each digit on many backgrounds, not on its two stored ones.

    Returns (model, info) with the test accuracy per set and the wall time.
    """
    import tempfile
    from dataclasses import replace

    from .nets.presets import PRESETS
    from .train import fit
    preset = PRESETS["classifier"]
    cfg = replace(cfg or preset.train, **overrides)
    torch.manual_seed(cfg.seed)
    x = torch.cat([to_model_range(ds.x_train) for ds in sets.values()])
    y = torch.cat([torch.from_numpy(ds.y_train) for ds in sets.values()])
    cfg = replace(cfg, steps=(epochs or preset.epochs) * (len(x) // cfg.batch_size))
    model = DigitCNN()

    n_fresh = int(round(reblend_share * cfg.batch_size)) if reblend is not None else 0
    from .data.embedded import reblend as blend

    def batch_loss(model, g):
        idx = torch.randint(0, len(x), (cfg.batch_size - n_fresh,), generator=g)
        xb, yb = x[idx], y[idx]
        if n_fresh:
            digits, labels = reblend
            j = torch.randint(0, len(digits), (n_fresh,), generator=g).numpy()
            rng = np.random.default_rng(int(torch.randint(0, 2 ** 31, (1,), generator=g)))
            xb = torch.cat([xb, to_model_range(blend(digits[j], rng))])
            yb = torch.cat([yb, torch.from_numpy(labels[j])])
        return F.cross_entropy(model(_augment(xb, g)), yb, label_smoothing=0.05)

    with tempfile.TemporaryDirectory() as tmp:
        res = fit(model, batch_loss, cfg, state_dir or tmp, progress=progress, desc="classifier")
    model = res.model
    info = {"test_accuracy": {n: accuracy(model, ds.x_test, ds.y_test) for n, ds in sets.items()},
            "steps": cfg.steps, "batch_size": cfg.batch_size, "wall_seconds": round(res.wall, 1),
            "cpu_seconds": round(res.cpu, 1) if res.cpu is not None else None,
            "reblend_share": reblend_share if n_fresh else 0.0, "precision": res.precision}
    return model.eval(), info


def save_classifier(model: DigitCNN, out_dir, info: dict) -> Path:
    out_dir = Path(out_dir)
    save_weights(model, out_dir / "model.safetensors", half=True)
    write_text_atomic(out_dir / "info.json", json.dumps(info, indent=2))
    return out_dir


def train_and_save(sets: dict, out_dir, cfg, *, epochs: int | None = None, command: str = "",
                   progress: bool = True, reblend=None) -> Path:
    """:func:`train_classifier` resumable from ``out_dir/state``, then :func:`save_classifier`
    with the command and the data fingerprints in ``info.json``."""
    model, info = train_classifier(sets, epochs=epochs, cfg=cfg, progress=progress,
                                   state_dir=Path(out_dir) / "state", reblend=reblend)
    info.update(command=command, data_fingerprints={n: d.fingerprint for n, d in sets.items()})
    out = save_classifier(model, out_dir, info)
    print(f"test accuracy {info['test_accuracy']}")
    return out


def load_classifier(ckpt_dir) -> DigitCNN:
    return load_weights(DigitCNN(), Path(ckpt_dir) / "model.safetensors").eval()

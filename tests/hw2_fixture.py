"""Writes a small hw2_data tree in the course's exact layout (tests/conftest.py uses it)."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

from hw2lib.rehearse.build import TI_SPEC

# the course's UNet.py stand-in (P2): the user gives its path, hw2lib imports it from there
COURSE_UNET_PY = textwrap.dedent('''
    import torch
    from torch import nn

    class UNet(nn.Module):
        """Stands in for the course's UNet: called as model(x, t), state dict {'w': (3,)}."""
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(3))

        def forward(self, x, t):
            return 0.3 * torch.tanh(x) + self.w.view(1, 3, 1, 1) + 1e-4 * t.float().view(-1, 1, 1, 1)
''')


def _png(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def write_digits(root: Path, per_class: int = 14, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for name in ("mnistm", "svhn"):
        base = root / "digits" / name
        rows = ["image_name,label"]
        for i in range(10 * per_class):
            fname = f"{i:05d}.png"
            _png(base / "data" / fname, rng.integers(0, 256, (28, 28, 3), dtype=np.uint8))
            rows.append(f"{fname},{i % 10}")
        (base / "train.csv").write_text("\n".join(rows) + "\n")


def write_face(root: Path, seed: int = 0) -> None:
    import torch
    g = torch.Generator().manual_seed(seed)
    base = root / "face"
    (base / "noise").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(10):
        torch.save(torch.randn(1, 3, 256, 256, generator=g), base / "noise" / f"{i:02d}.pt")
        _png(base / "GT" / f"{i:02d}.png", rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    torch.save({"w": torch.zeros(3)}, base / "UNet.pt")


def write_clip_zeroshot(root: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    base = root / "clip_zeroshot"
    labels = {"0": "apple", "1": "maple_tree", "2": "willow_tree"}
    base.mkdir(parents=True, exist_ok=True)
    (base / "id2label.json").write_text(json.dumps(labels))
    for c in range(3):
        for j in range(2):
            _png(base / "val" / f"{c}_{450 + j}.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))


def write_textual_inversion(root: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    base = root / "textual_inversion"
    spec = TI_SPEC  # the course's input.json layout, as the rehearsal writes it
    base.mkdir(parents=True, exist_ok=True)
    (base / "input.json").write_text(json.dumps(spec, indent=1))
    for d in ("0", "1", "cat"):
        for j in range(2):
            _png(base / d / f"{j}.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))


def write_hw2_data(root: Path) -> Path:
    """The whole tree under ``root`` (returned)."""
    root = Path(root)
    write_digits(root)
    write_face(root)
    write_clip_zeroshot(root)
    write_textual_inversion(root)
    return root

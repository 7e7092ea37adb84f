"""Zero-shot classification with open_clip (Radford et al. 2021, sec. 3.1.2).

A class c gets the text embedding w_c = normalize(mean_k normalize(f_text(template_k(c)))); an
image x is classified by p(c | x) = softmax_c(s * <normalize(f_image(x)), w_c>), with s the
model's learned logit scale (100 for OpenAI's weights).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .model import ClipModel


def _as_pil(img):
    from PIL import Image
    if isinstance(img, (str, Path)):
        with Image.open(img) as im:
            return im.convert("RGB")
    if isinstance(img, np.ndarray):
        return Image.fromarray(img).convert("RGB")
    return img.convert("RGB")


@torch.inference_mode()
def encode_images(clip: ClipModel, images, *, batch_size: int = 256, progress: bool = True,
                  device: str = "cpu") -> torch.Tensor:
    """(N, D) normalised image embeddings. ``images``: paths, PIL images or uint8 (N, H, W, 3)."""
    from tqdm.auto import tqdm

    from ..precision import autocast
    feats = []
    for i in tqdm(range(0, len(images), batch_size), disable=not progress, desc="encode images"):
        x = torch.stack([clip.preprocess(_as_pil(im)) for im in images[i:i + batch_size]])
        with autocast(device):
            feats.append(clip.model.encode_image(x.to(device), normalize=True).float().cpu())
    return torch.cat(feats)


@dataclass(frozen=True)
class ZeroShotResult:
    probs: np.ndarray  # (N, C) softmax over classes
    labels: np.ndarray  # (N,) true class ids
    classnames: tuple[str, ...]
    class_weights: np.ndarray | None = None  # (C, D) the normalised class text embeddings w_c
    image_features: np.ndarray | None = None  # (N, D) the normalised image embeddings

    @property
    def preds(self) -> np.ndarray:
        return self.probs.argmax(1)

    @property
    def top1(self) -> float:
        return float((self.preds == self.labels).mean())

    def topk(self, k: int = 5) -> float:
        top = np.argsort(-self.probs, axis=1)[:, :k]
        return float((top == self.labels[:, None]).any(1).mean())

    def per_class(self) -> np.ndarray:
        """(C,) accuracy of each class (NaN where a class has no image)."""
        c = len(self.classnames)
        hit = np.bincount(self.labels, weights=self.preds == self.labels, minlength=c)
        n = np.bincount(self.labels, minlength=c)
        with np.errstate(invalid="ignore"):
            return hit / n

    def class_sizes(self) -> str:
        """How many images each class has, for a caption: "200 images per class" when every
        class has as many, else the range and mean ("150-250 images per class, 200 on
        average")."""
        n = np.bincount(self.labels, minlength=len(self.classnames))
        if n.min() == n.max():
            return f"{n[0]:,} images per class"
        return f"{n.min():,}-{n.max():,} images per class, {n.mean():,.0f} on average"

    def per_class_se(self) -> np.ndarray:
        """(C,) one standard error of each class's accuracy, sqrt(p (1 - p) / n_c)."""
        n = np.bincount(self.labels, minlength=len(self.classnames))
        p = self.per_class()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(p * (1 - p) / n)

    def confusions(self, k: int = 5) -> list[tuple[str, str, int]]:
        """The k most frequent (true, predicted, count) mistakes, and every pair tied with the
        k-th (so no pair is dropped for its place in the class order); ties in class order."""
        c = len(self.classnames)
        m = np.zeros((c, c), dtype=int)
        np.add.at(m, (self.labels, self.preds), 1)
        np.fill_diagonal(m, 0)
        order = np.argsort(-m, axis=None, kind="stable")
        kth = m.flat[order[min(k, len(order)) - 1]]
        return [(self.classnames[i // c], self.classnames[i % c], int(m.flat[i]))
                for i in order if m.flat[i] > 0 and m.flat[i] >= kth]

    def cases(self, n: int = 5, *, correct: bool) -> np.ndarray:
        """Indices of ``n`` successes or failures, the most confident first, at most one per true
        class while there are enough classes (so the panel shows n different classes)."""
        ok = self.preds == self.labels
        idx = np.flatnonzero(ok if correct else ~ok)
        idx = idx[np.argsort(-self.probs[idx, self.preds[idx]], kind="stable")]
        first, seen = [], set()
        for i in idx:
            if self.labels[i] not in seen:
                first.append(i)
                seen.add(self.labels[i])
        rest = [i for i in idx if i not in set(first)]
        return np.asarray((first + rest)[:n], dtype=int)

    def top(self, i: int, k: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-self.probs[i])[:k]
        return [(self.classnames[j], float(self.probs[i, j])) for j in order]


@torch.inference_mode()
def zero_shot(clip: ClipModel, image_features: torch.Tensor, labels, classnames: Sequence[str],
              templates: Sequence[str]) -> ZeroShotResult:
    """Classify pre-encoded images (see :func:`encode_images`) with one template set: the class
    weights are open_clip's ``build_zero_shot_classifier`` (the formula above)."""
    from open_clip import build_zero_shot_classifier

    from ..device import of
    w = build_zero_shot_classifier(clip.model, clip.tokenizer, list(classnames), list(templates),
                                   device=of(clip.model)).float().cpu()
    logits = clip.model.logit_scale.exp().float().cpu() * image_features @ w
    return ZeroShotResult(logits.softmax(-1).numpy(), np.asarray(labels), tuple(classnames),
                          w.T.numpy(), image_features.float().cpu().numpy())

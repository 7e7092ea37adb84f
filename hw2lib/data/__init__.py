"""Data: embedded builders (from what pip packages ship) and course-data (`hw2_data`) readers.

This package knows nothing about models. :func:`load_digit_sets` and :func:`face_images` give
both modes one interface, so a notebook changes only its ``mode`` parameter.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .cache import cached_arrays, fingerprint
from .course import (CourseDataError, check_tree, load_images, read_clip_zeroshot, read_digits,
                     read_face, read_textual_inversion)
from .split import stratified_split
from .embedded import DigitSet, build_digits, build_faces, build_mnistm, build_svhn
from ..modes import DIGIT_SETS, MODES


def _check_mode(mode: str, data_dir) -> None:
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "course" and not data_dir:
        raise InputError("mode='course' needs data_dir: the hw2_data folder (make report DATA=...)")


def course_digit_set(data_dir, name: str, *, seed: int = 0, test_fraction: float = 0.1,
                     cache_dir=None) -> DigitSet:
    """The course's ``digits/<name>`` as a DigitSet: a stratified ``test_fraction`` of
    train.csv is held out (deterministic for ``seed``) to score the project's classifier."""
    d = read_digits(data_dir, name)
    params = dict(n=len(d.paths), first=str(d.paths[0]), last=str(d.paths[-1]), seed=seed,
                  test_fraction=test_fraction)

    def build():
        x = load_images(d.paths, size=28)
        counts = [int(round(test_fraction * np.sum(d.labels == c))) for c in range(10)]
        train, test = stratified_split(d.labels, counts, np.random.default_rng(seed))
        return dict(x_train=x[train], y_train=d.labels[train], x_test=x[test], y_test=d.labels[test])

    arrays = cached_arrays(f"course-{name}", params, build, cache_dir)
    return DigitSet(name, arrays["x_train"], arrays["y_train"], arrays["x_test"],
                    arrays["y_test"], fingerprint(arrays))


def load_digit_sets(mode: str = "embedded", *, data_dir=None, seed: int = 0,
                    cache_dir=None) -> dict[str, DigitSet]:
    """{"mnistm": DigitSet, "svhn": DigitSet} for either mode."""
    _check_mode(mode, data_dir)
    if mode == "embedded":
        return {n: build_digits(n, seed=seed, cache_dir=cache_dir) for n in DIGIT_SETS}
    return {n: course_digit_set(data_dir, n, seed=seed, cache_dir=cache_dir) for n in DIGIT_SETS}


def count_table(sets: dict[str, DigitSet], names: dict | None = None):
    """A pandas DataFrame: one row per (set, split), a column per class 0-9, and the total.
    ``names``: what to call each set in the row labels (default: its key)."""
    import pandas as pd
    names = names or {}
    rows = {f"{names.get(name, name)}, {split}": counts for name, ds in sets.items()
            for split, counts in ds.counts().items()}
    df = pd.DataFrame.from_dict(rows, orient="index", columns=[str(c) for c in range(10)])
    df["total"] = df.sum(axis=1)
    return df


FACES_CAPTION = {
    "embedded": "The first 40 of the 100 LFW face crops (scikit-image) that the embedded face "
                "model was trained on, at their original 25 × 25 pixels (the model sees them resized "
                "to 32 × 32, and mirrored).",
    "course": "The course's ground-truth faces face/GT/00-09.png: DDIM outputs (η = 0) of the "
              "course's face UNet.",
}


def face_images(mode: str = "embedded", *, data_dir=None) -> np.ndarray:
    """Faces to look at, float32 (N, H, W, 3) in [0, 1]: the 100 LFW crops (embedded) or the
    course's ground-truth images face/GT/*.png (course)."""
    _check_mode(mode, data_dir)
    if mode == "embedded":
        return np.repeat(build_faces()[..., None], 3, axis=3)
    return load_images(read_face(data_dir).gt_paths).astype(np.float32) / 255.0


__all__ = ["MODES", "DIGIT_SETS", "DigitSet", "CourseDataError", "build_digits", "build_faces",
           "build_mnistm", "build_svhn", "check_tree", "count_table", "course_digit_set", "face_images",
           "load_digit_sets", "load_images", "read_clip_zeroshot", "read_digits", "read_face",
           "read_textual_inversion"]

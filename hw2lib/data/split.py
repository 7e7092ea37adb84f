"""The stratified train/test split both modes use."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stratified_split(y: np.ndarray, n_test: int | Sequence[int], rng: np.random.Generator,
                     n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test), both shuffled: ``n_test`` images of each class (one count for all,
    or one per class) go to test, drawn at random; the rest go to train."""
    counts = [n_test] * n_classes if np.isscalar(n_test) else list(n_test)
    test = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:counts[c]]
                           for c in range(n_classes)])
    train = np.setdiff1d(np.arange(len(y)), test)
    return rng.permutation(train), rng.permutation(test)

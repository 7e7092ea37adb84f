"""How much the samples *look* like the data, beyond being readable digits.

Accuracy says that a generated 3 reads as a 3; it does not see a collapsed look (every MNIST-M
background orange, every SVHN plate purple). Two statistics do:

* **KID** (Binkowski et al. 2018, "Demystifying MMD GANs", sec. 4 / eq. 4): the unbiased
  estimate of the squared maximum mean discrepancy between two feature sets under the cubic
  polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets (as torchmetrics'
  ``KernelInceptionDistance``). The features are the project CNN's penultimate layer (its
  global-average-pooled conv features) rather than Inception's: small, and trained on exactly
  these two looks. 0 when the two sets come from one distribution (it can go slightly below 0).
* **Mean-colour distance**: the total variation distance 1/2 sum |p - q| between the histograms
  of per-image mean colours (RGB, ``bins`` per channel), in [0, 1]: the share of images whose
  overall colour would have to change.

Both are compared with a floor: the same statistic between the real training split and the
held-out split at the same sample sizes, i.e. what two real samples of the set differ by.
"""
from __future__ import annotations

import numpy as np
import torch


def cnn_features(model, images_uint8: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """The CNN's penultimate features (``model.features``: (N, D) float64) of uint8
    (N, H, W, 3) images."""
    from .images import to_model_range
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(images_uint8), batch_size):
            out.append(model.features(to_model_range(images_uint8[i:i + batch_size])).double())
    return torch.cat(out).numpy() if out else np.zeros((0, 0))


def poly_kernel(a: torch.Tensor, b: torch.Tensor, degree: int = 3, coef: float = 1.0):
    """k(x, y) = (x.y / d + coef)^degree, d the feature dimension (Binkowski et al. 2018)."""
    return (a @ b.T / a.shape[1] + coef) ** degree


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, **kernel) -> torch.Tensor:
    """Unbiased MMD^2 (Gretton et al. 2012, eq. 3; Binkowski et al. eq. 4): the mean of k over
    pairs of distinct rows within x and within y, minus twice the mean of k over x-y pairs."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = poly_kernel(x, x, **kernel), poly_kernel(y, y, **kernel), poly_kernel(x, y, **kernel)
    return ((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
            + (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1)) - 2 * kxy.mean())


def kid(real: np.ndarray, fake: np.ndarray, *, subsets: int = 100, subset_size: int = 1000,
        generator: torch.Generator | None = None) -> tuple[float, float]:
    """(mean, standard deviation) of the unbiased MMD^2 over ``subsets`` random subsets of
    ``subset_size`` rows of each feature set (capped by the smaller set), as torchmetrics'
    ``KernelInceptionDistance.compute`` draws them (a permutation of ``real``, then of ``fake``,
    per subset; the global torch generator when ``generator`` is None)."""
    r, f = torch.as_tensor(real, dtype=torch.float64), torch.as_tensor(fake, dtype=torch.float64)
    size = min(subset_size, len(r), len(f))
    if size < 2:
        raise ValueError(f"KID needs at least 2 rows in each set, got {len(r)} and {len(f)}")
    scores = []
    for _ in range(subsets):
        ri = torch.randperm(len(r), generator=generator)[:size]
        fi = torch.randperm(len(f), generator=generator)[:size]
        scores.append(mmd2_unbiased(r[ri], f[fi]))
    s = torch.stack(scores)
    return float(s.mean()), float(s.std(unbiased=False))


def mean_colour_histogram(images_uint8: np.ndarray, bins: int = 4) -> np.ndarray:
    """The normalised histogram (bins^3,) of per-image mean RGB colours of uint8 (N, H, W, 3)."""
    mean = images_uint8.reshape(len(images_uint8), -1, 3).mean(1)
    idx = np.minimum((mean / 256 * bins).astype(int), bins - 1)
    flat = (idx[:, 0] * bins + idx[:, 1]) * bins + idx[:, 2]
    return np.bincount(flat, minlength=bins ** 3) / len(images_uint8)


def colour_distance(a_uint8: np.ndarray, b_uint8: np.ndarray, bins: int = 4) -> float:
    """Total variation distance between the mean-colour histograms of two image sets."""
    return 0.5 * float(np.abs(mean_colour_histogram(a_uint8, bins)
                              - mean_colour_histogram(b_uint8, bins)).sum())


def look_stats(model, samples: np.ndarray, test: np.ndarray, train: np.ndarray, *,
               subsets: int = 100, seed: int = 0, floor_draws: int = 10) -> dict:
    """KID and mean-colour distance of ``samples`` against the held-out ``test`` images, and
    their floors (``train`` against ``test``: KID at the samples' subset size, the colour
    distance as the mean over ``floor_draws`` random train subsets of len(samples) images).
    All uint8 (N, H, W, 3)."""
    g = torch.Generator().manual_seed(seed)
    f_test, f_s, f_train = (cnn_features(model, x) for x in (test, samples, train))
    size = min(1000, len(f_s), len(f_test))
    k, k_sd = kid(f_test, f_s, subsets=subsets, subset_size=size, generator=g)
    k0, k0_sd = kid(f_test, f_train, subsets=subsets, subset_size=size, generator=g)
    rng = np.random.default_rng(seed)
    floor = np.mean([colour_distance(train[rng.choice(len(train), len(samples), replace=False)],
                                     test) for _ in range(floor_draws)])
    return {"KID": k, "KID sd": k_sd, "KID floor": k0, "colour TV": colour_distance(samples, test),
            "colour TV floor": float(floor), "KID subset": size}

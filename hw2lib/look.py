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
held-out split at the same sample sizes, i.e. what two real samples of the set differ by. The
colour TV is biased upwards at small sizes, so its floor (a mean) is well above 0 and a ratio to
it says how many times the real-vs-real difference the samples show; KID's floor is 0 within its
spread, so KID is divided by the floor's mean + 2 sd (:data:`KID_RATIO`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

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
    # one intra-op thread: on these small kernels a second thread only waits (100 subsets of 30
    # rows took 0.47 CPU-s on two threads and 0.02 on one on this machine, under load)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(subsets):
            ri = torch.randperm(len(r), generator=generator)[:size]
            fi = torch.randperm(len(f), generator=generator)[:size]
            scores.append(mmd2_unbiased(r[ri], f[fi]))
    finally:
        torch.set_num_threads(threads)
    s = torch.stack(scores)
    return float(s.mean()), float(s.std(unbiased=False))


def colour_bins(images_uint8: np.ndarray, bins: int = 4) -> np.ndarray:
    """The bin (0 .. bins^3 - 1) of each image's mean RGB colour, uint8 (N, H, W, 3) -> (N,)."""
    mean = images_uint8.reshape(len(images_uint8), -1, 3).mean(1)
    idx = np.minimum((mean / 256 * bins).astype(int), bins - 1)
    return (idx[:, 0] * bins + idx[:, 1]) * bins + idx[:, 2]


def mean_colour_histogram(images_uint8: np.ndarray, bins: int = 4) -> np.ndarray:
    """The normalised histogram (bins^3,) of per-image mean RGB colours of uint8 (N, H, W, 3)."""
    return np.bincount(colour_bins(images_uint8, bins), minlength=bins ** 3) / len(images_uint8)


def colour_distance(a_uint8: np.ndarray, b_uint8: np.ndarray, bins: int = 4) -> float:
    """Total variation distance between the mean-colour histograms of two image sets."""
    return 0.5 * float(np.abs(mean_colour_histogram(a_uint8, bins)
                              - mean_colour_histogram(b_uint8, bins)).sum())


@dataclass(frozen=True)
class LookReference:
    """What a sample set is compared with, computed once for many sample sets: the held-out
    images' CNN features and mean-colour bins, and for the floors the mean-colour bins of the
    whole training split and the features of a random ``pool`` of it (at most ``KID_SUBSET``
    rows are drawn per KID subset, so a larger pool adds cost, not precision). Floors are
    cached per sample size."""
    test_features: np.ndarray
    test_bins: np.ndarray
    pool_features: np.ndarray
    train_bins: np.ndarray
    bins: int
    seed: int
    floors: dict = field(default_factory=dict, compare=False, repr=False)


KID_SUBSET = 1000  # torchmetrics' default subset size


def reference(model, test: np.ndarray, train: np.ndarray, *, pool: int = KID_SUBSET,
              bins: int = 4, seed: int = 0, cache_dir=None) -> LookReference:
    """The :class:`LookReference` of a data set's held-out ``test`` and ``train`` images (uint8
    (N, H, W, 3)); ``pool`` training images (seeded by ``seed``) get CNN features. With
    ``cache_dir``, the arrays are read from / written to the data cache
    (:func:`hw2lib.data.cache.cached_arrays`), keyed by the fingerprints of the images and of the
    model's weights: the same data and CNN never pay for their features twice."""
    from .data.cache import cached_arrays, fingerprint

    def build():
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(train), min(pool, len(train)), replace=False))
        return {"test_features": cnn_features(model, test), "test_bins": colour_bins(test, bins),
                "pool_features": cnn_features(model, train[pick]),
                "train_bins": colour_bins(train, bins)}
    key = {"test": fingerprint({"x": test}), "train": fingerprint({"x": train}), "pool": pool,
           "bins": bins, "seed": seed,
           "model": fingerprint({k: v.float().numpy() for k, v in model.state_dict().items()})}
    a = cached_arrays("look-reference", key, build, cache_dir)
    return LookReference(a["test_features"], a["test_bins"], a["pool_features"], a["train_bins"],
                         bins, seed)


def _tv(a_bins: np.ndarray, b_bins: np.ndarray, n_bins: int) -> float:
    pa = np.bincount(a_bins, minlength=n_bins) / len(a_bins)
    pb = np.bincount(b_bins, minlength=n_bins) / len(b_bins)
    return 0.5 * float(np.abs(pa - pb).sum())


def floors(ref: LookReference, n: int, *, subsets: int = 100, draws: int = 100) -> dict:
    """What two real samples of the set differ by at sample size ``n``: KID between the
    held-out features and the training pool at the samples' subset size (mean and sd over
    ``subsets``), and the mean-colour TV between ``n`` random training images and the held-out
    split (mean and sd over ``draws``). Seeded by ``ref.seed``; cached in ``ref.floors``."""
    key = (n, subsets, draws)
    if key not in ref.floors:
        size = min(KID_SUBSET, n, len(ref.test_features))
        g = torch.Generator().manual_seed(ref.seed)
        k0, k0_sd = kid(ref.test_features, ref.pool_features, subsets=subsets, subset_size=size,
                        generator=g)
        rng = np.random.default_rng(ref.seed)
        tv = [_tv(ref.train_bins[rng.choice(len(ref.train_bins), n, replace=False)],
                  ref.test_bins, ref.bins ** 3) for _ in range(draws)]
        ref.floors[key] = {"KID floor": k0, "KID floor sd": k0_sd,
                           "colour TV floor": float(np.mean(tv)),
                           "colour TV floor sd": float(np.std(tv))}
    return ref.floors[key]


def look_against(ref: LookReference, model, samples: np.ndarray, *, subsets: int = 100,
                 draws: int = 100) -> dict:
    """KID (mean and sd over ``subsets`` random subsets) and mean-colour TV of ``samples``
    (uint8 (N, H, W, 3)) against the held-out split of ``ref``, with their :func:`floors` at
    N and each statistic's ratio to its floor (KID's: to :data:`KID_RATIO`'s upper level)."""
    n = len(samples)
    size = min(KID_SUBSET, n, len(ref.test_features))
    g = torch.Generator().manual_seed(ref.seed)
    k, k_sd = kid(ref.test_features, cnn_features(model, samples), subsets=subsets,
                  subset_size=size, generator=g)
    out = {"KID": k, "KID sd": k_sd,
           "colour TV": _tv(colour_bins(samples, ref.bins), ref.test_bins, ref.bins ** 3),
           **floors(ref, n, subsets=subsets, draws=draws), "KID subset": size}
    out[KID_RATIO] = ratio(out["KID"], out["KID floor"] + 2 * out["KID floor sd"])
    out[COLOUR_RATIO] = ratio(out["colour TV"], out["colour TV floor"])
    return out


# KID is unbiased: between two real samples of one distribution its mean is 0 (within its
# spread), so a ratio to that mean is noise. It is divided by the floor's upper level instead,
# mean + 2 sd, the most that two real samples of this size typically differ by.
KID_RATIO = "KID / (floor + 2 sd)"
COLOUR_RATIO = "colour TV / floor"  # the colour TV over its floor (a mean)

# the ratio columns as a table shows them (show.table's ``headers``): plain words on one line
# (typeset fractions were too small to read at the page's scale)
HEADERS = {KID_RATIO: "KID ÷ (floor + 2 sd)", COLOUR_RATIO: "colour TV ÷ floor"}


def ratio_cell(r: float) -> str:
    """A look ratio as a table cell: ``1.5×``; ``≤ 0`` for a KID at or below 0 (unbiased,
    it goes below 0 when the samples are as close to the data as two real samples are; a
    ratio at or below 0 would read as a number it is not); ``–`` without a ratio."""
    if not np.isfinite(r):
        return "–"
    return "≤ 0" if r <= 0 else f"{r:.1f}×"


def se_cell(se: float) -> str:
    """A binomial standard error as a table cell: ``1.4%``; ``0.0%`` where no image is misread
    (or none read right): the plug-in SE then says nothing, and a 95% bound on the error rate is
    3/n there (the rule of three), which :data:`CELL_NOTES` states."""
    return f"{se:.1%}"


# the formats (show.table) of the score columns that every P1 table shares
FORMATS = {"accuracy": "{:.1%}", "SE": se_cell, KID_RATIO: ratio_cell,
           COLOUR_RATIO: ratio_cell}
CELL_NOTES = {"SE": "SE 0.0%: no image misread, where the standard error is 0 and says "
                    "nothing (the error rate is then below 3/n at 95% confidence)",
              KID_RATIO: "≤ 0: KID at or below 0, as close to the held-out images as two real "
                         "samples are"}


def with_notes(caption: str, table) -> str:
    """``caption`` and the :data:`CELL_NOTES` that ``table``'s cells need, ``; ``-joined."""
    need = {"SE": "SE" in table and bool((table["SE"] == 0).any()),
            KID_RATIO: KID_RATIO in table and bool((table[KID_RATIO] <= 0).any())}
    return "; ".join([caption] + [CELL_NOTES[k] for k, v in need.items() if v])


def ratio(value: float, floor: float) -> float:
    """``value / floor``; NaN where the floor is not positive."""
    return value / floor if floor > 0 else float("nan")


def look_stats(model, samples: np.ndarray, test: np.ndarray, train: np.ndarray, *,
               subsets: int = 100, seed: int = 0, pool: int = KID_SUBSET) -> dict:
    """:func:`look_against` a fresh :func:`reference` of ``test`` and ``train``: KID and
    mean-colour TV of ``samples`` against the held-out ``test`` images, their floors (the
    training split against ``test`` at the samples' size) and the ratios. All uint8
    (N, H, W, 3)."""
    return look_against(reference(model, test, train, pool=pool, seed=seed), model, samples,
                        subsets=subsets)

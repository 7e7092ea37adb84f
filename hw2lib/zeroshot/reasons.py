"""Why a zero-shot prediction failed, from measurable causes rather than from its own numbers:

* **text side**: the class weights are the class names' text embeddings, so two classes whose
  embeddings nearly coincide are separated by a small margin and a small error on the image
  side flips them (the cosine of the two weights, and the predicted class's rank among the
  true class's nearest classes);
* **category**: CIFAR-100's own superclasses (its 20 coarse labels) group classes that look
  alike, so a mistake inside one superclass is a look-alike, not a random error;
* **image side**: a low-contrast image (its grey-level spread low among the set's) carries
  little shape for the image encoder.
"""
from __future__ import annotations

import numpy as np

from .templates import clean_classname

# CIFAR-100's coarse labels (Krizhevsky 2009): 20 superclasses of 5 classes each.
SUPERCLASSES = {
    "aquatic mammals": "beaver dolphin otter seal whale",
    "fish": "aquarium_fish flatfish ray shark trout",
    "flowers": "orchid poppy rose sunflower tulip",
    "food containers": "bottle bowl can cup plate",
    "fruit and vegetables": "apple mushroom orange pear sweet_pepper",
    "household electrical devices": "clock keyboard lamp telephone television",
    "household furniture": "bed chair couch table wardrobe",
    "insects": "bee beetle butterfly caterpillar cockroach",
    "large carnivores": "bear leopard lion tiger wolf",
    "large man-made outdoor things": "bridge castle house road skyscraper",
    "large natural outdoor scenes": "cloud forest mountain plain sea",
    "large omnivores and herbivores": "camel cattle chimpanzee elephant kangaroo",
    "medium-sized mammals": "fox porcupine possum raccoon skunk",
    "non-insect invertebrates": "crab lobster snail spider worm",
    "people": "baby boy girl man woman",
    "reptiles": "crocodile dinosaur lizard snake turtle",
    "small mammals": "hamster mouse rabbit shrew squirrel",
    "trees": "maple_tree oak_tree palm_tree pine_tree willow_tree",
    "vehicles 1": "bicycle bus motorcycle pickup_truck train",
    "vehicles 2": "lawn_mower rocket streetcar tank tractor",
}
SUPERCLASS_OF = {clean_classname(c): s for s, names in SUPERCLASSES.items() for c in names.split()}
NEAR_SHARE = 0.1  # "near in text space": among the nearest 10% of the other classes (at least 1)
LOW_CONTRAST = 20  # percentile of the set's grey-level spread below which an image is "low contrast"


def contrast(images) -> np.ndarray:
    """Grey-level spread (standard deviation of luminance in [0, 1]) of each uint8 (H, W, 3)
    image."""
    out = []
    for img in images:
        x = np.asarray(img, dtype=np.float32) / 255
        out.append(float((x @ np.array([0.299, 0.587, 0.114], np.float32)).std()))
    return np.asarray(out)


def text_neighbours(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cosines (C, C), ranks (C, C)) of normalised class weights: ``ranks[y, p]`` is p's rank
    among y's nearest other classes (1 = nearest; the diagonal is 0)."""
    cos = weights @ weights.T
    order = np.argsort(-np.where(np.eye(len(cos), dtype=bool), -np.inf, cos), axis=1)
    ranks = np.zeros_like(order)
    np.put_along_axis(ranks, order, np.arange(1, len(cos) + 1)[None].repeat(len(cos), 0), axis=1)
    np.fill_diagonal(ranks, 0)
    return cos, ranks


def causes(classnames, y: int, p: int, *, cos=None, ranks=None, percentile=None) -> list[str]:
    """The measurable causes of predicting class ``p`` for an image of class ``y``:
    ``cos``/``ranks`` from :func:`text_neighbours`, ``percentile`` the image's contrast
    percentile in its set (each optional)."""
    ty, tp = classnames[y], classnames[p]
    out = []
    if cos is not None:
        r, c, n = int(ranks[y, p]), float(cos[y, p]), len(classnames) - 1
        mean = float(cos[~np.eye(len(cos), dtype=bool)].mean())
        which = "nearest" if r == 1 else f"{_ordinal(r)} nearest"
        if r <= near_rank(len(classnames)):
            out.append(f"near in text space: \"{tp}\" is the {which} of the {n} other classes "
                       f"to \"{ty}\" (cosine {c:.2f}; {mean:.2f} between classes on average)")
        else:
            out.append(f"not singled out by the text side (\"{tp}\" is the {which} of the {n} "
                       f"other classes to \"{ty}\", cosine {c:.2f}; {mean:.2f} on average): the "
                       "image embedding itself points elsewhere")
    sy, sp = SUPERCLASS_OF.get(ty), SUPERCLASS_OF.get(tp)
    if sy and sy == sp:
        out.append(f"look-alikes: both are {sy} in CIFAR-100's superclasses")
    if percentile is not None and percentile < LOW_CONTRAST:
        out.append(f"low contrast: its grey-level spread is at the set's {percentile:.0f}th "
                   "percentile")
    return out


def near_rank(n_classes: int) -> int:
    """The largest rank among a class's nearest others that counts as near (:data:`NEAR_SHARE`)."""
    return max(1, int(NEAR_SHARE * (n_classes - 1)))


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"

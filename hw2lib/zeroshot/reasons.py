"""Why a zero-shot prediction failed, from measurable causes rather than from its own numbers:

* **text side**: the class weights are the class names' text embeddings, so two classes whose
  embeddings nearly coincide are separated by a small margin and a small error on the image
  side flips them (the cosine of the two weights, and the predicted class's rank among the
  true class's nearest classes);
* **category**: CIFAR-100's own superclasses (its 20 coarse labels) group classes that look
  alike, so a mistake inside one superclass is a look-alike, not a random error; for digits,
  the pairs whose shapes differ by one stroke or loop (:data:`DIGIT_SHAPES`);
* **image side**: what the image encoder makes of the image, seen through the set's other
  images: whether its nearest neighbours in CLIP's image-embedding space are of the predicted
  class (it looks like one) or of its own (a border case the class weights decide); and a
  low-contrast image (its colour spread low among the set's) carries little shape for the image
  encoder.
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

# Digit pairs whose shapes differ by one stroke or loop (the embedded mode's look-alikes, as
# CIFAR-100's superclasses are the course's): what the predicted digit (second) has or lacks
# against the true one (first), each direction in its own words. These are facts of the pair's
# shapes, not claims about the image: whether the image's stroke is faint is not measured.
DIGIT_SHAPES = {
    ("six", "zero"): "a 0 is a 6's loop without its stem",
    ("zero", "six"): "a 6 is a 0 with a stem rising from its top",
    ("eight", "six"): "a 6 is an 8 without its upper loop",
    ("six", "eight"): "an 8 is a 6 whose stem closes into an upper loop",
    ("eight", "zero"): "a 0 is an 8 without its waist",
    ("zero", "eight"): "an 8 is a 0 pinched at its waist",
    ("nine", "seven"): "a 7 is a 9 whose loop is open",
    ("seven", "nine"): "a 9 is a 7 whose top bar closes into a loop",
    ("four", "nine"): "a 9 is a 4 closed at the top",
    ("nine", "four"): "a 4 is a 9 whose loop is open at the top",
    ("one", "seven"): "a 7 is a 1 with a bar at its top",
    ("seven", "one"): "a 1 is a 7 without its top bar",
    ("three", "eight"): "an 8 is a 3 closed on the left",
    ("eight", "three"): "a 3 is an 8 open on the left",
    ("five", "three"): "a 3 is a 5 whose top stroke bends round",
    ("three", "five"): "a 5 is a 3 with a flat top stroke and a corner",
    ("five", "six"): "a 6 is a 5 whose lower bowl closes",
    ("six", "five"): "a 5 is a 6 whose loop is open on the left",
    ("two", "seven"): "a 7 is a 2 without its foot",
    ("seven", "two"): "a 2 is a 7 with a foot",
    ("nine", "eight"): "an 8 is a 9 whose lower stroke closes into a loop",
    ("eight", "nine"): "a 9 is an 8 whose lower loop is open",
}
NEAR_PAIRS = 0.25  # "near in text space": the pair's cosine is in the top quarter of all pairs'
NEIGHBOURS = 10  # the image-space neighbours an image is compared with
LOW_CONTRAST = 20  # percentile of the set's colour spread below which an image is "low contrast"


def contrast(images) -> np.ndarray:
    """Colour spread of each uint8 (H, W, 3) image: the root-mean-square distance of its pixels'
    RGB (in [0, 1]) from the image's mean colour, divided by sqrt(3) (for a grey image, the
    standard deviation of its grey level). A cyan digit on red has a high spread even where
    its grey levels are close."""
    out = []
    for img in images:
        x = np.asarray(img, dtype=np.float32).reshape(-1, 3) / 255
        out.append(float(np.sqrt(((x - x.mean(0)) ** 2).sum(1).mean() / 3)))
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


def image_neighbours(features: np.ndarray, labels, i: int, k: int = NEIGHBOURS) -> np.ndarray:
    """The labels of image ``i``'s ``k`` nearest other images (cosine of the normalised image
    embeddings ``features`` (N, D)), nearest first."""
    sim = features @ features[i]
    order = np.argsort(-sim, kind="stable")
    return np.asarray(labels)[order[order != i][:k]]


def near_cosine(cos: np.ndarray) -> float:
    """The cosine above which a class pair counts as near: the top :data:`NEAR_PAIRS` of the
    pairs' cosines."""
    pairs = cos[np.triu_indices(len(cos), 1)]
    return float(np.quantile(pairs, 1 - NEAR_PAIRS))


def causes(classnames, y: int, p: int, *, cos=None, ranks=None, percentile=None,
           neighbours=None) -> list[str]:
    """The measurable causes of predicting class ``p`` for an image of class ``y``:
    ``cos``/``ranks`` from :func:`text_neighbours`, ``percentile`` the image's contrast
    percentile in its set, ``neighbours`` the labels of its nearest images
    (:func:`image_neighbours`) (each optional)."""
    ty, tp = classnames[y], classnames[p]
    out = []
    if neighbours is not None:
        k, m, j = len(neighbours), int((neighbours == p).sum()), int((neighbours == y).sum())
        if m > j:
            out.append(f"looks like {_article(tp)} \"{tp}\" to the image encoder: of the {k} "
                       f"other test images nearest to it in CLIP's image-embedding space, "
                       f"{m} are labelled \"{tp}\" and {j} \"{ty}\", so the mistake is made "
                       f"before any class name is read")
        else:
            most = "split between the two" if m == j else "mostly its own class"
            out.append(f"a border case: its {k} nearest images are {most} ({j} \"{ty}\", "
                       f"{m} \"{tp}\"), and the class weights tip it")
    if cos is not None:
        r, c, n = int(ranks[y, p]), float(cos[y, p]), len(classnames) - 1
        mean = float(cos[~np.eye(len(cos), dtype=bool)].mean())
        which = "nearest" if r == 1 else f"{_ordinal(r)} nearest"
        where = (f"\"{tp}\" is the {which} of the {n} other classes to \"{ty}\", cosine {c:.2f} "
                 f"against {mean:.2f} between classes on average")
        out.append(f"near in text space: {where}, in the closest quarter of class pairs"
                   if c >= near_cosine(cos) else
                   f"not near in text space: {where}, not in the closest quarter of pairs")
    sy, sp = SUPERCLASS_OF.get(ty), SUPERCLASS_OF.get(tp)
    if sy and sy == sp:
        out.append(f"look-alikes: both are {sy} in CIFAR-100's superclasses")
    shape = DIGIT_SHAPES.get((ty, tp))
    if shape:
        out.append(f"shapes one stroke apart (a fact of the pair; this image's strokes are "
                   f"not measured): {shape}")
    if percentile is not None and percentile < LOW_CONTRAST:
        out.append(f"low contrast: its colour spread is at the set's {percentile:.0f}th "
                   "percentile")
    return out


def _article(word: str) -> str:
    """ "a" or "an" before ``word`` (by its first letter; "one" takes "a")."""
    return "an" if word[:1].lower() in "aeio" and not word.lower().startswith("one") else "a"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"

"""Problem 3a for the notebook and the ``p3 zeroshot`` command: CLIP zero-shot classification,
on the course's 50 CIFAR-100 classes (ViT-B/32 with OpenAI's weights from a local file) or on the
embedded digits (the project's CLIP)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .classify import ZeroShotResult, encode_images, zero_shot
from .model import ClipModel
from .templates import DIGIT_WORDS, clean_classname, template_set

COURSE_MODEL = "ViT-B-32"


@dataclass(frozen=True)
class ZeroShotSet:
    images: object  # list of paths (course) or uint8 (N, H, W, 3) (embedded)
    labels: np.ndarray
    classnames: tuple[str, ...]  # cleaned for prompts


def zeroshot_set(mode: str = "embedded", *, data_dir=None, seed: int = 0,
                 cache_dir=None) -> ZeroShotSet:
    """Course: ``hw2_data/clip_zeroshot/val`` with id2label.json; embedded: the held-out test
    splits of both digit sets, classes named by the digit words."""
    if mode == "course":
        from ..data.course import read_clip_zeroshot
        if data_dir is None:
            raise InputError("course mode needs data_dir (the hw2_data folder)")
        d = read_clip_zeroshot(data_dir)
        names = tuple(clean_classname(d.id2label[i]) for i in sorted(d.id2label))
        return ZeroShotSet(list(d.paths), d.labels, names)
    from ..data import load_digit_sets
    from .digit_clip import eval_set
    x, y = eval_set(load_digit_sets("embedded", seed=seed, cache_dir=cache_dir))
    return ZeroShotSet(x, y, DIGIT_WORDS)


def load_model(mode: str = "embedded", *, pretrained=None, ckpt="checkpoints/p3_clip",
               model_name: str = COURSE_MODEL, quick_gelu: bool = True,
               device="cpu") -> ClipModel:
    """Course: ``model_name`` with the weights file ``pretrained`` (QuickGELU for OpenAI's
    weights); embedded: the project's CLIP from ``ckpt``. On ``device``."""
    from ..device import resolve
    from .model import load_clip, load_digit_clip
    dev = str(resolve(device))
    if mode == "course":
        return load_clip(model_name, pretrained, quick_gelu=quick_gelu, device=dev)
    return load_digit_clip(ckpt, device=dev)


def evaluate(clip: ClipModel, data: ZeroShotSet, kinds=("single", "ensemble"), *,
             progress: bool = True) -> dict[str, ZeroShotResult]:
    """One :class:`ZeroShotResult` per template set, from one pass of the image encoder."""
    from ..device import of
    dev = str(of(clip.model))
    feats = encode_images(clip, data.images, progress=progress, device=dev)
    return {k: zero_shot(clip, feats, data.labels, data.classnames, template_set(k))
            for k in kinds}


TEMPLATE_NAMES = {"single": 'one template, "A photo of {}."',
                  "ensemble": "18 CIFAR-100 templates (prompt ensemble)"}


def accuracy_table(results: dict[str, ZeroShotResult]):
    """Per template set: images, top-1 and its standard error, and top-5 where there are more
    than 10 classes (among 10, five guesses cover half of them and say little)."""
    import pandas as pd

    from ..report.show import se
    return pd.DataFrame([{"templates": TEMPLATE_NAMES.get(k, k), "images": len(r.labels),
                          "top-1": r.top1, "SE": se(r.top1, len(r.labels)),
                          **({"top-5": r.topk(5)} if len(r.classnames) > 10 else {})}
                         for k, r in results.items()])


def set_contrast(data: ZeroShotSet, max_images: int = 500) -> np.ndarray:
    """Grey-level spread of the set's images (:func:`.reasons.contrast`), on at most
    ``max_images`` evenly spaced ones (course images are read from disk)."""
    from .reasons import contrast
    idx = np.linspace(0, len(data.labels) - 1, min(max_images, len(data.labels))).astype(int)
    return contrast(case_images(data, idx))


def failure_table(result: ZeroShotResult, idx, *, images=None, set_contrast=None):
    """The shown failures: true and predicted class, the probability of each, the true class's
    rank, how often the whole set makes the same mistake, and the measurable causes
    (:func:`.reasons.causes`: image-space neighbours from the image embeddings, text-space
    neighbours from the class weights, CIFAR-100
    look-alikes, and, given the failures' ``images`` and the set's contrasts, low contrast)."""
    import pandas as pd

    from .reasons import causes, contrast, image_neighbours, text_neighbours
    c = len(result.classnames)
    m = np.zeros((c, c), dtype=int)
    np.add.at(m, (result.labels, result.preds), 1)
    cos = ranks = None
    if result.class_weights is not None:
        cos, ranks = text_neighbours(result.class_weights)
    pct = [None] * len(idx)
    if images is not None and set_contrast is not None:
        pct = [100 * float((set_contrast < v).mean()) for v in contrast(images)]
    rows = []
    for k, i in enumerate(idx):
        y, p = int(result.labels[i]), int(result.preds[i])
        near = (None if result.image_features is None else
                image_neighbours(result.image_features, result.labels, int(i)))
        why = causes(result.classnames, y, p, cos=cos, ranks=ranks, percentile=pct[k],
                     neighbours=near)
        rows.append({"true": result.classnames[y], "predicted": result.classnames[p],
                     "p(predicted)": float(result.probs[i, p]), "p(true)": float(result.probs[i, y]),
                     "rank of true": int((result.probs[i] > result.probs[i, y]).sum()) + 1,
                     "same mistake in set": int(m[y, p]),
                     "likely causes": "; ".join(why) if why else "none of the measured causes"})
    return pd.DataFrame(rows)


CASE_CAPTIONS = {
    "successes": "{n} correctly classified images, the most confident first (at most one per "
                 "class): the true class and the three most probable classes with their "
                 "probabilities.",
    "failures": "{n} misclassified images, the most confident mistakes first (at most one per "
                "true class): the true class and the three most probable classes.",
}


def case_titles(result: ZeroShotResult, idx) -> list[str]:
    """Panel titles: the true class, then the top-3 classes with their probabilities."""
    return [f"true: {result.classnames[result.labels[i]]}\n" +
            "\n".join(f"{name}: {_prob(p)}" for name, p in result.top(i, 3)) for i in idx]


def failure_view(reasons):
    """:func:`failure_table` as the page shows it: probabilities written as the cards write them
    (:func:`_prob`: "<1%", ">99%"), so a table and its figure agree."""
    return reasons.assign(**{c: reasons[c].map(_prob) for c in ("p(predicted)", "p(true)")})


def _prob(p: float) -> str:
    """A probability in whole percent, "<1%" and ">99%" where rounding would say 0 or 100."""
    return "<1%" if p < 0.005 else ">99%" if p > 0.995 else f"{p:.0%}"


def setup_text(clip: ClipModel, data: ZeroShotSet, mode: str) -> str:
    n_params = sum(p.numel() for p in clip.model.parameters())
    what = ("the project's embedded CLIP, classifying the ten digit words on the held-out test "
            "digits of both digit sets (images it never saw in training, whose captions never "
            "contain the word \"photo\")" if mode == "embedded" else
            "CLIP ViT-B/32 with OpenAI's weights, on the course's clip_zeroshot/val")
    seen = (" The ten digit words themselves were in its training captions, so zero-shot here "
            "means unseen images and unseen templates, not unseen classes; OpenAI's CLIP, too, "
            "had met CIFAR-100's class names in its web captions." if mode == "embedded" else "")
    return (f"Model: {what}: `{clip.name}`, {n_params / 1e6:.1f}M parameters; "
            f"{len(data.labels):,} images, {len(data.classnames)} classes.{seen}")


def accuracy_text(results: dict[str, ZeroShotResult], mode: str) -> str:
    from ..report.show import pct
    s, e = results["single"], results["ensemble"]
    n = len(e.labels)
    gain = e.top1 - s.top1
    discordant = (e.preds != e.labels) != (s.preds != s.labels)  # right with one set only
    se_gain = float(np.sqrt(discordant.mean() / n))  # paired: only discordant images count
    text = (f"Top-1 accuracy {pct(s.top1, n)} with one template and {pct(e.top1, n)} with the "
            f"18-template ensemble, a paired difference of {100 * gain:+.1f} points (SE "
            f"{100 * se_gain:.1f}; chance is {pct(1 / len(e.classnames))}). ")
    text += ("Averaging the templates' text embeddings averages out the quirks of any one "
             "prompt, and helps measurably here." if gain > 2 * se_gain else
             "The ensemble's gain is within two standard errors here: this text tower gives "
             "about the same class embedding whatever the template.")
    if mode == "embedded":
        text += (" Ten digit words are far easier than the course's fifty CIFAR-100 classes: "
                 "this number is not comparable to the course's (56-59% with one template for "
                 "ViT-B/32 in public solutions; see the title page).")
    return text


def failure_text(reasons, mode: str, logit_scale: float | None = None) -> str:
    """Why the failures fail: the causes the table measured, counted, and the kind of data."""
    from .reasons import LOW_CONTRAST
    n = len(reasons)
    causes = reasons["likely causes"]
    conf = int((reasons["p(predicted)"] >= 0.9).sum())
    near = int(causes.str.contains("near in text space:", regex=False).sum()
               - causes.str.contains("not near in text space", regex=False).sum())
    looks = int(causes.str.contains("to the image encoder:", regex=False).sum())
    alike = int(causes.str.contains("look-alikes").sum())
    low = int(causes.str.contains("low contrast").sum())
    again = int((reasons["same mistake in set"] >= 2).sum())
    domain = ("handwriting that is ambiguous or has broken strokes, and on the MNIST-M-like "
              "images a bright edge of the background photo that can add or cut a stroke: the "
              "image encoder sees the whole crop, not a segmented digit" if mode == "embedded"
              else "CIFAR-100's 32 × 32 photos upsampled to 224 pixels, so fine detail is gone")
    parts = [f"{_of(looks, n, 'looks', 'look')} like the predicted class to the image encoder "
             "(most of the other test images nearest to it in CLIP's image-embedding space "
             "carry that label)",
             f"in {near} of {n} the two classes are near in text space (their class weights in "
             "the closest quarter of class pairs), so a smaller error on the image side flips "
             "the decision"]
    if mode != "embedded":
        parts.append(f"{_of(alike, n, 'is a look-alike', 'are look-alikes')} inside one "
                     "CIFAR-100 superclass")
    else:
        shapes = int(causes.str.contains("shapes one stroke apart").sum())
        parts.append(f"in {shapes} of {n} the two digits' shapes are one stroke or loop apart")
    parts.append(f"{_of(low, n, 'is a low-contrast image', 'are low-contrast images')} (below "
                 f"the set's {LOW_CONTRAST}th percentile of colour spread)")
    gap = float(np.log(9) / logit_scale) if logit_scale else None  # p 0.9 against 0.1
    confident = "" if not conf else (
        f" The {conf} confident mistakes (at least 90% on the wrong class): with the learned "
        f"logit scale $s$ = {logit_scale:.2f}, 90% against 10% needs a cosine gap of "
        f"$\\ln 9 / s$ = {gap:.3f} between the image's cosines with the two classes' "
        f"weights, " + (
            "so a large $s$ turns near-ties into near-certain probabilities."
            if gap < 0.03 else
            "so these are images the image encoder puts clearly nearer the wrong class, not "
            "near-ties made certain by the softmax.")
        if gap else
        f" The {conf} confident mistakes (at least 90% on the wrong class) are as confident as "
        "right answers: the softmax of the scaled cosines turns a clear gap into near-certain "
        "probabilities.")
    return (f"**Why they fail.** Measured per image in the table: {'; '.join(parts)}; "
            f"{_of(again, n, 'is a mistake', 'are mistakes')} the set makes more than once. "
            f"Behind all of them is the data: {domain}.{confident}")


def _of(k: int, n: int, singular: str, plural: str) -> str:
    """ "1 of 5 is ...", "2 of 5 are ..." """
    return f"{k} of {n} {singular if k == 1 else plural}"


def confusion_table(result: ZeroShotResult, k: int = 5):
    """The k most frequent (true -> predicted) mistakes, with their share of the true class."""
    import pandas as pd
    rows = []
    for true, pred, n in result.confusions(k):
        n_true = int((result.labels == result.classnames.index(true)).sum())
        rows.append({"true": true, "predicted": pred, "images": n, "share of true class": n / n_true})
    return pd.DataFrame(rows)


def case_images(data: ZeroShotSet, idx) -> np.ndarray | list:
    """The images at ``idx`` as uint8 arrays (course images are read from disk)."""
    if isinstance(data.images, np.ndarray):
        return data.images[np.asarray(idx)]
    from PIL import Image
    return [np.asarray(Image.open(data.images[i]).convert("RGB")) for i in idx]


def format_accuracies(results: dict[str, ZeroShotResult]) -> str:
    lines = [f"{'templates':10s} {'n':>3s} {'top-1':>7s} {'top-5':>7s}"]
    for k, r in results.items():
        lines.append(f"{k:10s} {len(template_set(k)):3d} {r.top1:7.4f} {r.topk(5):7.4f}")
    return "\n".join(lines)


def write_predictions(path, data: ZeroShotSet, result: ZeroShotResult) -> Path:
    """CSV: image, true label, predicted label (the course's output format plus the truth)."""
    import csv
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "label", "pred"])
        for i, (y, p) in enumerate(zip(result.labels, result.preds)):
            name = Path(data.images[i]).name if not isinstance(data.images, np.ndarray) else str(i)
            w.writerow([name, int(y), int(p)])
    return path

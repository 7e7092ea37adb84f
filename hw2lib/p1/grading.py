"""P1's grading folders (the course's ``<set>/{digit}_{NNN}.png``) and their scoring by the
digit classifiers."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import DIGIT_SETS
from ..errors import InputError, MissingInputError
from .model import load, sample


def classifier_test_accuracy(classifier_ckpt) -> dict:
    """The project CNN's accuracy on the held-out real test splits, from its ``info.json``."""
    import json
    info = Path(classifier_ckpt) / "info.json"
    return json.loads(info.read_text()).get("test_accuracy", {}) if info.exists() else {}


def write_grading_folder(out_dir, set_name: str, images: np.ndarray, digits, *,
                         overwrite: bool = False) -> Path:
    """The course's layout: ``<out>/<set>/{digit}_{NNN}.png``, NNN = 001.. per digit. The set is
    written into a temporary folder and moved into place; an existing non-empty set folder is
    refused unless ``overwrite`` (older files would be graded with the new ones)."""
    from PIL import Image

    from ..files import replace_folder
    folder = Path(out_dir) / set_name
    count: dict[int, int] = {}
    with replace_folder(folder, overwrite=overwrite) as tmp:
        for img, d in zip(images, np.asarray(digits)):
            count[int(d)] = count.get(int(d), 0) + 1
            Image.fromarray(img).save(tmp / f"{int(d)}_{count[int(d)]:03d}.png")
    return folder


def grading_folders(out_dir) -> list[Path]:
    """The set folders (``mnistm/``, ``svhn/``) of a grading folder; anything else in it (hidden
    folders such as ``.ipynb_checkpoints``, other folders, files) is not graded."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise MissingInputError(f"{out_dir}: missing (expected a folder with mnistm/ and svhn/)")
    folders = [out_dir / n for n in DIGIT_SETS if (out_dir / n).is_dir()]
    if not folders:
        raise MissingInputError(f"no set folders ({', '.join(f'{n}/' for n in DIGIT_SETS)}) "
                                f"in {out_dir}")
    return folders


def read_grading_folder(folder) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images, labels) from a grading folder; the label is the file name's first character."""
    from ..data import load_images
    paths = sorted(p for p in Path(folder).glob("*.png"))
    if not paths:
        raise MissingInputError(f"no PNG images in {folder}")
    bad = [p.name for p in paths if not p.name[0].isdigit()]
    if bad:
        raise InputError(f"{folder}: file names must start with the digit: {bad[:5]}")
    return load_images(paths, size=28), np.array([int(p.name[0]) for p in paths])


def scorers(classifier_ckpt, course_classifier=None) -> dict:
    """{"project CNN": model, ["course LeNet": model]} for :func:`score_table`."""
    from ..classifier import load_classifier, load_course_classifier
    out = {"project CNN": load_classifier(classifier_ckpt)}
    if course_classifier:
        out["course LeNet"] = load_course_classifier(course_classifier)
    return out


def score_table(samples: dict, digits, scorers: dict, *, mode: str = "embedded",
                look: dict | None = None):
    """One row per (digit set, classifier): images, correct, accuracy and its standard error.
    The course's LeNet was trained on MNIST-M only, so it scores only that set. With ``look``
    ({name: :class:`hw2lib.look.LookReference`}, see :func:`hw2lib.p1.look_references`), the
    project CNN's rows also get the look columns (:data:`hw2lib.p1.look.LOOK_COLUMNS`: KID,
    mean-colour TV, their train-vs-test floors and the ratios to them; NaN in other rows)."""
    import pandas as pd

    from ..classifier import predict
    from ..modes import set_label
    from ..report.show import se
    rows = []
    for name, imgs in samples.items():
        for s, m in scorers.items():
            if s == "course LeNet" and name != "mnistm":
                continue
            correct = int(np.sum(predict(m, imgs) == np.asarray(digits)))
            p = correct / len(imgs)
            rows.append({"digit set": set_label(name, mode), "classifier": s, "images": len(imgs),
                         "correct": correct, "accuracy": p, "SE": se(p, len(imgs))})
            if look and s == "project CNN":
                from .look import look_row
                rows[-1].update(look_row(m, imgs, look[name]))
    return pd.DataFrame(rows)


def sample_to_folders(ckpt, out, *, n_per_digit: int = 50, sampler: str = "ddim",
                      steps: int = 50, w: float = 4.0, seed: int = 0,
                      overwrite: bool = False, device="cpu", precision: str = "auto") -> list[Path]:
    """``python -m hw2lib p1 sample``: ``n_per_digit`` of each digit per set, written as the
    course grades them (``out/<set>/{digit}_{NNN}.png``); set k's noise is seeded ``seed + k``.
    Refuses non-empty set folders (unless ``overwrite``) before sampling anything."""
    from ..files import check_empty_or_overwrite
    from ..precision import resolve
    unet, schedule, cfg = load(ckpt, device=device)
    print(resolve(precision, device=device).describe())
    for name in cfg["sets"]:
        check_empty_or_overwrite(Path(out) / name, overwrite=overwrite)
    digits = np.repeat(np.arange(10), n_per_digit)
    folders = []
    for k, name in enumerate(cfg["sets"]):
        images, _ = sample(unet, schedule, name, digits, sampler=sampler, steps=steps, w=w,
                           seed=seed + k, progress=True, precision=precision)
        folders.append(write_grading_folder(out, name, images, digits, overwrite=overwrite))
    return folders


def score_folders(folder, scorers: dict) -> list[tuple[str, str, float, int]]:
    """(scorer, set, accuracy, n images) for every grading folder under ``folder``, and an
    ``average`` row per scorer (n: the images of all sets)."""
    from ..classifier import accuracy
    rows = []
    for scorer, model in scorers.items():
        accs, n = [], 0
        for d in grading_folders(folder):
            x, y = read_grading_folder(d)
            accs.append(accuracy(model, x, y))
            n += len(y)
            rows.append((scorer, d.name, accs[-1], len(y)))
        rows.append((scorer, "average", sum(accs) / len(accs), n))
    return rows


def look_folders(folder, model, sets: dict) -> dict[str, dict]:
    """{set: :func:`hw2lib.look.look_stats`} of each grading folder under ``folder`` against
    the held-out split of ``sets[set]`` (KID on ``model``'s features, mean-colour TV; the
    train-vs-test values are their floors)."""
    from ..look import look_stats
    out = {}
    for d in grading_folders(folder):
        x, _ = read_grading_folder(d)
        out[d.name] = look_stats(model, x, sets[d.name].x_test, sets[d.name].x_train)
    return out

"""Readers for the course's ``hw2_data`` tree, with validation that reports every problem at once.

Layout (see shared/hw2_data_layout.md)::

    digits/{mnistm,svhn}/train.csv, data/<name>.png      28x28 RGB, csv: header, (file, label)
    face/noise/00..09.pt (1,3,256,256), face/GT/00..09.png 256x256 RGB, face/UNet.pt
    clip_zeroshot/id2label.json, clip_zeroshot/val/<classid>_<idx>.png
    textual_inversion/input.json, textual_inversion/{0,1,cat}/*.jpg|png

Each part has one parser returning ``(data, problems)``: :func:`check_tree` reports the problems,
the ``read_*`` loaders raise :class:`CourseDataError` listing them. A part whose folder is missing
is *absent* (a user may hold only some parts), not broken. Each file format has one validator
(:func:`parse_noise_file`, :func:`parse_id2label`, :func:`parse_concepts`), shared by
``data check``, the CLI commands that take such a file, and the notebooks.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, MissingInputError
from ..files import SAFE_NAME, read_json
from ..modes import DIGIT_SETS

N_FACE = 10
IMAGE_EXT = (".png", ".jpg", ".jpeg")


class CourseDataError(InputError):
    """Raised by a reader whose part of the tree (or input file) is missing or malformed; lists
    every problem."""

    def __init__(self, part: str, problems: list["Problem"], *, title: str | None = None):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{title or f'hw2_data part {part!r}'} is not usable:\n{lines}")


@dataclass(frozen=True)
class Problem:
    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


@dataclass
class PartReport:
    name: str
    status: str  # "ok" | "absent" | "broken"
    summary: str = ""
    problems: list[Problem] = field(default_factory=list)


def _check_image(path: Path, size: int | None, problems: list[Problem]) -> None:
    """Open an image; note a problem if unreadable or not ``size`` x ``size`` RGB."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            im.load()
            mode, (w, h) = im.mode, im.size
    except Exception as e:  # noqa: BLE001 - any decoder error means unreadable
        problems.append(Problem(str(path), f"unreadable image ({type(e).__name__}: {e})"))
        return
    if mode != "RGB":
        problems.append(Problem(str(path), f"expected an RGB image, found mode {mode}"))
    if size is not None and (w, h) != (size, size):
        problems.append(Problem(str(path), f"expected {size}x{size}, found {w}x{h}"))


def _sample(items: list, limit: int | None) -> list:
    """All items, or an evenly spaced subset of ``limit`` of them (deterministic)."""
    if limit is None or len(items) <= limit:
        return items
    idx = np.linspace(0, len(items) - 1, limit).round().astype(int)
    return [items[i] for i in idx]


# ---------------------------------------------------------------------------------------- digits
@dataclass(frozen=True)
class DigitsData:
    name: str
    paths: list[Path]
    labels: np.ndarray  # int64 (N,)


def parse_digits(root: Path, name: str, *, check_images: int | None = 200):
    """Rows of ``digits/<name>/train.csv`` (columns by position: file name, label 0-9)."""
    base = Path(root) / "digits" / name
    csv_path, data_dir = base / "train.csv", base / "data"
    problems: list[Problem] = []
    for p in (csv_path, data_dir):
        if not p.exists():
            problems.append(Problem(str(p), "missing"))
    if problems:
        return None, problems
    present = {p.name for p in data_dir.iterdir()}
    paths, labels = [], []
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return None, [Problem(str(csv_path), "empty file (expected a header row, then rows)")]
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) < 2:
            problems.append(Problem(f"{csv_path}:{lineno}", f"bad csv row {row!r} (need file,label)"))
            continue
        fname, lab = row[0].strip(), row[1].strip()
        try:
            y = int(lab)
        except ValueError:
            problems.append(Problem(f"{csv_path}:{lineno}", f"label {lab!r} is not an integer"))
            continue
        if not 0 <= y <= 9:
            problems.append(Problem(f"{csv_path}:{lineno}", f"label {y} out of range 0-9"))
            continue
        if fname not in present:
            problems.append(Problem(str(data_dir / fname), f"missing (listed in {csv_path.name}:{lineno})"))
            continue
        paths.append(data_dir / fname)
        labels.append(y)
    if not paths and not problems:
        problems.append(Problem(str(csv_path), "no rows"))
    for p in _sample(paths, check_images):
        _check_image(p, 28, problems)
    return DigitsData(name, paths, np.asarray(labels, dtype=np.int64)), problems


def _valid(part: str, data, problems: list, **kw):
    """A ``parse_*`` result as a ``read_*`` returns it: the data, or :class:`CourseDataError`
    listing every problem found."""
    if problems:
        raise CourseDataError(part, problems, **kw)
    return data


def read_digits(root, name: str) -> DigitsData:
    if name not in DIGIT_SETS:
        raise ValueError(f"unknown digit set {name!r}; expected one of {DIGIT_SETS}")
    return _valid(f"digits/{name}", *parse_digits(Path(root), name))


def load_images(paths, size: int | None = None) -> np.ndarray:
    """uint8 (N, H, W, 3) from image files (resized to ``size`` if given)."""
    from PIL import Image
    out = []
    for p in paths:
        with Image.open(p) as im:
            im = im.convert("RGB")
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.BICUBIC)
            out.append(np.asarray(im))
    return np.stack(out)


# ------------------------------------------------------------------------------------------ face
@dataclass(frozen=True)
class FaceData:
    noise_paths: list[Path]
    gt_paths: list[Path]
    unet_ckpt: Path


NOISE_SHAPE = (1, 3, 256, 256)


def parse_noise_file(path, shape: tuple | None = NOISE_SHAPE):
    """One noise file: a finite floating-point tensor (1, C, H, W) (``shape`` if given).
    Returns (float32 tensor or None, problems)."""
    import torch
    path = Path(path)
    try:
        x = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means unreadable (pickles are refused)
        return None, [Problem(str(path), f"unreadable tensor ({type(e).__name__})")]
    want = shape or "(1, C, H, W)"
    if not isinstance(x, torch.Tensor):
        return None, [Problem(str(path), f"holds a {type(x).__name__}, expected a tensor {want}")]
    problems = []
    if not x.is_floating_point():
        problems.append(Problem(str(path), f"dtype {x.dtype}, expected floating-point Gaussian "
                                           "noise (float32)"))
    if x.ndim != 4 or x.shape[0] != 1:
        more = (f" ({x.shape[0]} noises in one file: one noise per file)"
                if x.ndim == 4 and x.shape[0] > 1 else "")
        problems.append(Problem(str(path), f"wrong shape {tuple(x.shape)}, expected {want}{more}"))
    elif shape is not None and tuple(x.shape) != tuple(shape):
        problems.append(Problem(str(path), f"wrong shape {tuple(x.shape)}, expected {shape}"))
    if x.is_floating_point() and not torch.isfinite(x).all():
        n = int((~torch.isfinite(x)).sum())
        problems.append(Problem(str(path), f"{n} NaN or infinite value(s)"))
    return (None if problems else x.float()), problems


def parse_face(root: Path, *, check_tensors: bool = True):
    base = Path(root) / "face"
    problems: list[Problem] = []
    noise = [base / "noise" / f"{i:02d}.pt" for i in range(N_FACE)]
    gt = [base / "GT" / f"{i:02d}.png" for i in range(N_FACE)]
    unet = base / "UNet.pt"
    for p in noise + gt + [unet]:
        if not p.exists():
            problems.append(Problem(str(p), "missing"))
    if check_tensors:
        for p in noise:
            if p.exists():
                problems += parse_noise_file(p)[1]
        for p in gt:
            if p.exists():
                _check_image(p, 256, problems)
    return FaceData(noise, gt, unet), problems


def read_face(root) -> FaceData:
    return _valid("face", *parse_face(Path(root)))


# --------------------------------------------------------------------------------- clip zero-shot
@dataclass(frozen=True)
class ZeroShotData:
    paths: list[Path]
    labels: np.ndarray  # int64 (N,)
    id2label: dict[int, str]

    @property
    def classnames(self) -> list[str]:
        """Class names for prompts: underscores turned into spaces, in class-id order."""
        return [self.id2label[i].replace("_", " ") for i in sorted(self.id2label)]


def _read_json(path: Path, what: str):
    """(parsed JSON or None, problems) of a JSON file (:func:`hw2lib.files.read_json`)."""
    try:
        return read_json(path, what=what), []
    except MissingInputError:
        return None, [Problem(str(path), "missing")]
    except InputError as e:
        return None, [Problem(str(path), str(e).removeprefix(f"{path}: "))]


def parse_id2label(path):
    """``id2label.json``: a non-empty JSON object whose keys are exactly the class ids 0..C-1
    and whose values are non-empty class names. Returns ({id: name}, problems)."""
    path = Path(path)
    what = "a JSON object of id -> label"
    raw, problems = _read_json(path, what)
    if problems:
        return {}, problems
    if not isinstance(raw, dict):
        return {}, [Problem(str(path), f"not {what} (found a JSON {type(raw).__name__})")]
    if not raw:
        return {}, [Problem(str(path), "empty: expected class ids 0..C-1 with their names")]
    id2label = {}
    for k, v in raw.items():
        if not (isinstance(k, str) and k.strip().isdigit()):
            problems.append(Problem(str(path), f"key {k!r} is not a class id (0, 1, ...)"))
        elif not isinstance(v, str) or not v.strip():
            problems.append(Problem(str(path), f"class {k}: name {v!r} is not a non-empty string"))
        elif int(k) in id2label:
            problems.append(Problem(str(path), f"class id {int(k)} appears twice"))
        else:
            id2label[int(k)] = v
    if not problems and sorted(id2label) != list(range(len(id2label))):
        gaps = sorted(set(range(max(id2label) + 1)) - set(id2label))
        problems.append(Problem(str(path), f"class ids must be 0..{len(id2label) - 1} without gaps; "
                                           f"missing {gaps[:10]}"))
    return (id2label if not problems else {}), problems


def parse_clip_zeroshot(root: Path, *, check_images: int | None = 200):
    base = Path(root) / "clip_zeroshot"
    jpath, vdir = base / "id2label.json", base / "val"
    id2label, problems = parse_id2label(jpath)
    if not vdir.is_dir():
        problems.append(Problem(str(vdir), "missing"))
        return None, problems
    paths, labels = [], []
    for p in sorted(vdir.iterdir()):
        if p.suffix.lower() not in IMAGE_EXT:
            continue
        head = p.stem.split("_")[0]
        if not head.isdigit() or "_" not in p.stem:
            problems.append(Problem(str(p), "name is not <classid>_<idx>.png"))
            continue
        if id2label and int(head) not in id2label:
            problems.append(Problem(str(p), f"class id {head} not in id2label.json"))
            continue
        paths.append(p)
        labels.append(int(head))
    if not paths:
        problems.append(Problem(str(vdir), "no images"))
    for p in _sample(paths, check_images):
        _check_image(p, None, problems)
    return ZeroShotData(paths, np.asarray(labels, dtype=np.int64), id2label), problems


def read_clip_zeroshot(root) -> ZeroShotData:
    return _valid("clip_zeroshot", *parse_clip_zeroshot(Path(root)))


# ---------------------------------------------------------------------------- textual inversion
@dataclass(frozen=True)
class Concept:
    key: str  # "0", "1", ...
    src_image: str
    token_name: str
    prompts: list[str]
    prompts_4_clip_eval: list[str]
    baseline: list[list[float]]
    image_paths: list[Path]


TI_KEYS = ("src_image", "token_name", "prompt", "prompt_4_clip_eval", "baseline")


def _is_text(x) -> bool:
    return isinstance(x, str) and bool(x.strip())


def _concept_problems(key, c) -> list[str]:
    """What is wrong with one concept of input.json (empty: nothing)."""
    if not SAFE_NAME.fullmatch(key):
        return [f"key {key!r} is not a plain name (letters, digits, '_', '-'): it names the "
                "concept's folders"]
    if not isinstance(c, dict):
        return [f"expected an object with keys {list(TI_KEYS)}, found {type(c).__name__}"]
    missing = [k for k in TI_KEYS if k not in c]
    if missing:
        return [f"missing keys {missing}"]
    bad = []
    for k in ("src_image", "token_name"):
        if not _is_text(c[k]):
            bad.append(f"{k} must be a non-empty string, found {c[k]!r}")
    if _is_text(c["token_name"]) and any(ch.isspace() for ch in c["token_name"]):
        bad.append(f"token_name {c['token_name']!r} must be one word (no spaces)")
    for k in ("prompt", "prompt_4_clip_eval"):
        if not isinstance(c[k], list) or not c[k] or not all(_is_text(p) for p in c[k]):
            bad.append(f"{k} must be a non-empty list of strings, found {c[k]!r}")
    b = c["baseline"]
    num = (int, float)
    if not isinstance(b, list) or not all(
            isinstance(r, list) and len(r) == 2 and all(isinstance(v, num) and not isinstance(v, bool)
                                                        for v in r) for r in b):
        bad.append(f"baseline must be a list of [image score, text score] pairs, found {b!r}")
    if not bad and not len(c["prompt"]) == len(c["prompt_4_clip_eval"]) == len(b):
        bad.append("prompt, prompt_4_clip_eval and baseline differ in length")
    return bad


def parse_concepts(json_path, refs_dir=None):
    """The textual-inversion ``input.json``: {key: {src_image, token_name, prompt,
    prompt_4_clip_eval, baseline}}. Keys must be plain names (they name output folders), tokens
    distinct, prompts non-empty lists of strings of one length with the baselines ([image, text]
    pairs). With ``refs_dir``, each concept's reference images ``refs_dir/<key>/`` must exist and
    open. Returns (list of :class:`Concept` or None, problems)."""
    jpath = Path(json_path)
    spec, problems = _read_json(jpath, "a JSON object of concept key -> concept")
    if problems:
        return None, problems
    if not isinstance(spec, dict) or not spec:
        return None, [Problem(str(jpath), "not a non-empty JSON object of concept key -> concept")]
    concepts, owner = [], {}
    for key, c in spec.items():
        where = f"{jpath}[{key!r}]"
        bad = _concept_problems(key, c)
        if not bad and c["token_name"] in owner:
            bad = [f"token_name {c['token_name']!r} is also the token of concept "
                   f"{owner[c['token_name']]!r}"]
        problems += [Problem(where, b) for b in bad]
        if bad:
            continue
        owner[c["token_name"]] = key
        imgs: list[Path] = []
        if refs_dir is not None:
            d = Path(refs_dir) / key
            imgs = sorted(p for p in d.glob("*") if p.suffix.lower() in IMAGE_EXT) if d.is_dir() else []
            if not imgs:
                problems.append(Problem(str(d), "missing or holds no images"))
            for p in imgs:
                _check_image(p, None, problems)
        concepts.append(Concept(key, c["src_image"], c["token_name"], list(c["prompt"]),
                                list(c["prompt_4_clip_eval"]), c["baseline"], imgs))
    return concepts, problems


def read_concepts(json_path, refs_dir=None) -> list[Concept]:
    """:func:`parse_concepts`, raising :class:`CourseDataError` listing every problem."""
    return _valid("textual_inversion", *parse_concepts(json_path, refs_dir), title=str(json_path))


def parse_textual_inversion(root: Path):
    base = Path(root) / "textual_inversion"
    concepts, problems = parse_concepts(base / "input.json", base)
    if concepts is None:
        return None, problems
    cat = base / "cat"
    if not cat.is_dir():
        problems.append(Problem(str(cat), "missing (extra cat photos for the multi-concept question)"))
    return concepts, problems


def read_textual_inversion(root) -> list[Concept]:
    return _valid("textual_inversion", *parse_textual_inversion(Path(root)))


# --------------------------------------------------------------------------------------- check
def check_tree(root, *, full: bool = False) -> list[PartReport]:
    """Validate every part of ``hw2_data`` under ``root``; a missing part is reported absent.

    Images are opened for up to 200 files per set (all of them with ``full=True``).
    """
    root = Path(root)
    limit = None if full else 200
    reports = []

    def add(name: str, folder: Path, parse, summarise):
        if not folder.exists():
            reports.append(PartReport(name, "absent", f"{folder} not found"))
            return
        data, problems = parse()
        status = "broken" if problems else "ok"
        reports.append(PartReport(name, status, summarise(data) if data is not None else "",
                                  problems))

    for name in DIGIT_SETS:
        add(f"digits/{name}", root / "digits" / name,
            lambda n=name: parse_digits(root, n, check_images=limit),
            lambda d: f"{len(d.paths)} images, per class {np.bincount(d.labels, minlength=10).tolist()}")
    add("face", root / "face", lambda: parse_face(root),
        lambda d: f"{len(d.noise_paths)} noises, {len(d.gt_paths)} GT images, {d.unet_ckpt.name}")
    add("clip_zeroshot", root / "clip_zeroshot",
        lambda: parse_clip_zeroshot(root, check_images=limit),
        lambda d: f"{len(d.paths)} images, {len(d.id2label)} classes")
    add("textual_inversion", root / "textual_inversion", lambda: parse_textual_inversion(root),
        lambda cs: ", ".join(f"{c.token_name}: {len(c.image_paths)} images, {len(c.prompts)} prompts"
                             for c in cs))
    return reports

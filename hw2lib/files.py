"""Files in and out: JSON and weights read with errors that name the file, outputs written to a
temporary name and moved into place, and output paths checked against the inputs.

Inputs are validated where they enter; an output never overwrites an input, and a name taken
from an input file never leads outside the output folder.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError, MissingInputError, OutputConflictError

LFS_POINTER = b"version https://git-lfs"
SAFE_NAME = re.compile(r"[A-Za-z0-9_-]+")


# ----------------------------------------------------------------------------------- reading
def check_not_lfs_pointer(path) -> None:
    """Raise :class:`InputError` if ``path`` is a Git LFS pointer instead of the real file."""
    with open(path, "rb") as f:
        if f.read(len(LFS_POINTER)) == LFS_POINTER:
            raise InputError(f"{path} is a Git LFS pointer, not the file itself: run "
                             "`git lfs pull` in the repository (or rebuild it with "
                             "`make checkpoints`)")


def _existing(path, what: str, hint: str) -> tuple[Path, str]:
    """(path, "; hint" or "") of an input file that exists and is no LFS pointer, else raise."""
    path = Path(path)
    tail = f"; {hint}" if hint else ""
    if not path.is_file():
        raise MissingInputError(f"{path}: missing (expected {what}){tail}")
    check_not_lfs_pointer(path)
    return path, tail


def read_json(path, *, what: str = "a JSON file", hint: str = ""):
    """The parsed JSON of ``path``; a missing, LFS-pointer or malformed file raises an error
    naming it (``hint``: what to do, appended to the message)."""
    path, tail = _existing(path, what, hint)
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not {what} (invalid JSON: {e}){tail}") from e


def torch_load(path, *, what: str, hint: str = ""):
    """``torch.load`` with ``weights_only=True`` (tensors and plain Python values only: a pickle
    that would run code is refused); errors name the file."""
    import pickle

    import torch
    path, tail = _existing(path, what, hint)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:
        raise InputError(f"{path}: not {what} that loads safely (refused or unreadable: "
                         f"{str(e).splitlines()[0]}){tail}") from e


def load_state_dict_file(path, *, key: str | None = None) -> dict:
    """A PyTorch state dict from ``path`` (see :func:`torch_load`), optionally under ``key``
    (``{"state_dict": ...}``)."""
    import torch
    obj = torch_load(path, what="a PyTorch state dict")
    if key is not None and isinstance(obj, dict) and key in obj:
        obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"{path}: expected a state dict (a dict of tensors"
                         f"{f', or one under key {key!r}' if key else ''})")
    return obj


def safe_name(name: str, *, where: str) -> str:
    """``name`` if it is a plain folder name ([A-Za-z0-9_-]+), else :class:`InputError`."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise InputError(f"{where}: {name!r} is not a plain name (letters, digits, '_', '-'); "
                         "it would be used as a folder name")
    return name


def child(root, name: str, *, where: str) -> Path:
    """``root / name`` for a validated ``name`` that stays inside ``root`` once resolved."""
    root = Path(root)
    path = root / safe_name(name, where=where)
    if not path.resolve().is_relative_to(root.resolve()):
        raise InputError(f"{where}: {name!r} leads outside {root}")
    return path


# ----------------------------------------------------------------------------------- writing
def refuse_overlap(out, inputs: dict) -> None:
    """Refuse an output folder ``out`` that is, holds or lies inside one of ``inputs``
    ({description: folder}), compared by resolved path."""
    o = Path(out).resolve()
    for what, p in inputs.items():
        if p is None:
            continue
        p = Path(p).resolve()
        if o == p or o.is_relative_to(p) or p.is_relative_to(o):
            raise OutputConflictError(f"--out {out} overlaps {what} {p}: writing there could "
                                      "overwrite an input; choose another output folder")


@contextmanager
def atomic_path(path):
    """Yield a temporary sibling of ``path`` to write; it replaces ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def save_image_atomic(img, path) -> Path:
    """A uint8 (H, W, C) array as an image file (format from the suffix), written atomically."""
    from PIL import Image
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(img).save(tmp, format=Image.registered_extensions()[path.suffix.lower()])
    return path


@contextmanager
def replace_folder(folder, *, overwrite: bool = False):
    """Yield an empty temporary folder to fill; on success it becomes ``folder``. An existing
    non-empty ``folder`` is refused unless ``overwrite`` (then it is replaced as a whole)."""
    folder = Path(folder)
    check_empty_or_overwrite(folder, overwrite=overwrite)
    tmp = folder.with_name(f".{folder.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old)
        else:
            os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def check_empty_or_overwrite(folder, *, overwrite: bool) -> None:
    """Refuse a non-empty ``folder`` unless ``overwrite`` (older files would mix with new ones)."""
    folder = Path(folder)
    if overwrite or not folder.exists():
        return
    if not folder.is_dir():
        raise OutputConflictError(f"{folder} exists and is not a folder")
    n = sum(1 for _ in folder.iterdir())
    if n:
        raise OutputConflictError(f"{folder} already holds {n} file(s) from an earlier run: choose "
                                  "an empty output folder, or pass --overwrite to replace it")

"""On-disk cache for built arrays, keyed by builder name, parameters and a builder version.

A cached file is ``<cache_dir>/<name>-<key>.npz``; ``key`` hashes the parameters, so a change of
seed or size builds a new file. The fingerprint is a hash of the array contents: it names what a
model was trained on, whatever the file is called.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

Arrays = dict[str, np.ndarray]


def fingerprint(arrays: Arrays) -> str:
    """sha256 (first 16 hex digits) over the arrays' names, dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def params_key(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def cached_arrays(name: str, params: dict, build: Callable[[], Arrays],
                  cache_dir: str | os.PathLike | None) -> Arrays:
    """Return ``build()``'s arrays, read from / written to ``cache_dir`` when one is given.

    The write goes to a temporary file renamed into place, so an interrupted build leaves no
    half-written cache behind.
    """
    if cache_dir is None:
        return build()
    path = Path(cache_dir) / f"{name}-{params_key(params)}.npz"
    if path.exists():
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    arrays = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return arrays

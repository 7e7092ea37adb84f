"""P2's files: the noises ``<name>.pt`` in, images ``<name>.png`` out, and the MSE (0-255)
between two folders of images."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import InputError, MissingInputError
from .ddim import DEFAULT_CONVENTION, N_STEPS, sample_uint8


def mse_255(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-image MSE on the 0-255 scale: mean over pixels and channels of (pred - gt)^2."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"shapes differ: prediction {pred.shape}, ground truth {gt.shape}")
    return ((pred - gt) ** 2).reshape(len(pred), -1).mean(1)


def _image_files(folder, what: str) -> dict:
    """{stem: path} of the images in ``folder``; two images with one stem are an error."""
    from ..data.course import IMAGE_EXT
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInputError(f"{folder}: missing (expected the folder of {what})")
    files: dict = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in IMAGE_EXT:
            if p.stem in files:
                raise InputError(f"{folder}: two images named {p.stem} ({files[p.stem].name}, "
                                 f"{p.name}); keep one")
            files[p.stem] = p
    return files


def mse_folders(pred_dir, gt_dir) -> tuple[list[str], np.ndarray]:
    """(names, per-image MSE on 0-255) of every ground-truth image in ``gt_dir`` against the
    prediction with the same name in ``pred_dir`` (any of .png, .jpg). Every ground-truth image
    must have a prediction and vice versa, of the same size; all problems are listed at once."""
    from ..data.course import CourseDataError, Problem, load_images
    gts = _image_files(gt_dir, "ground-truth images")
    preds = _image_files(pred_dir, "predicted images")
    problems = [Problem(str(gt_dir), "no images (.png, .jpg)")] if not gts else []
    problems += [Problem(str(gts[n]), f"has no prediction in {pred_dir} (expected {n}.png)")
                 for n in sorted(set(gts) - set(preds))]
    problems += [Problem(str(preds[n]), f"has no ground truth in {gt_dir}")
                 for n in sorted(set(preds) - set(gts))]
    names, pairs = sorted(set(gts) & set(preds)), []
    for n in names:
        try:
            g, q = load_images([gts[n]])[0], load_images([preds[n]])[0]
        except OSError as e:
            problems.append(Problem(f"{gts[n]} or {preds[n]}", f"unreadable image ({e})"))
            continue
        if g.shape != q.shape:
            problems.append(Problem(str(gts[n]), f"is {g.shape[1]}x{g.shape[0]} but the prediction "
                                                 f"{preds[n]} is {q.shape[1]}x{q.shape[0]}"))
        pairs.append((q, g))
    if problems:
        raise CourseDataError("mse", problems, title=f"MSE of {pred_dir} against {gt_dir}")
    return names, np.array([mse_255(q[None], g[None])[0] for q, g in pairs])


def noise_paths(noise_dir) -> list[Path]:
    paths = sorted(Path(noise_dir).glob("*.pt"))
    if not paths:
        raise MissingInputError(f"no noise files (00.pt, 01.pt, ...) in {noise_dir}")
    return paths


def load_noises(noise_dir) -> tuple[torch.Tensor, list[str]]:
    """(noises (N, C, H, W), names ["00", ...]) from ``noise_dir/*.pt``, each file validated by
    :func:`hw2lib.data.course.parse_noise_file` (one finite float (1, C, H, W) tensor, all of
    one shape); every problem is listed at once."""
    from ..data.course import CourseDataError, Problem, parse_noise_file
    paths = noise_paths(noise_dir)
    xs, problems = [], []
    for p in paths:
        x, bad = parse_noise_file(p, shape=None)
        xs.append(x)
        problems += bad
    shapes = {tuple(x.shape) for x in xs if x is not None}
    if len(shapes) > 1:
        problems.append(Problem(str(noise_dir), f"noises of different shapes {sorted(shapes)}"))
    if problems:
        raise CourseDataError("noise", problems, title=f"noise files in {noise_dir}")
    return torch.cat(xs), [p.stem for p in paths]


def write_noises(noise_dir, *, n: int = 10, shape=(3, 32, 32), seed: int = 0) -> list[Path]:
    """Fixed noises ``00.pt .. {n-1}.pt`` in the course's format (float32 (1, C, H, W)), drawn
    from one generator seeded by ``seed``; files already holding the same tensors are kept."""
    noise_dir = Path(noise_dir)
    noise_dir.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    paths = []
    for i in range(n):
        x = torch.randn((1, *shape), generator=g)
        p = noise_dir / f"{i:02d}.pt"
        if not (p.exists() and torch.equal(torch.load(p, weights_only=True), x)):
            torch.save(x, p)
        paths.append(p)
    return paths


def sample_folder(eps_model, noise_dir, out, *, eta: float = 0.0,
                  convention: str = DEFAULT_CONVENTION, seed: int = 0,
                  batch_size: int = 10, steps: int = N_STEPS, device="cpu") -> list[Path]:
    """``python -m hw2lib p2 sample`` (the course's ``hw2_2.sh``): DDIM from every
    ``noise_dir/<name>.pt`` to ``out/<name>.png``; refuses an ``out`` over its inputs."""
    from ..files import refuse_overlap, save_image_atomic
    noise_dir, out = Path(noise_dir), Path(out)
    refuse_overlap(out, {"the noise folder": noise_dir,
                         "the ground-truth folder": noise_dir.parent / "GT"})
    noises, names = load_noises(noise_dir)
    written = []
    for i in range(0, len(noises), batch_size):
        imgs = sample_uint8(eps_model, noises[i:i + batch_size], eta=eta, convention=convention,
                            seed=seed, image_ids=range(i, min(i + batch_size, len(noises))),
                            steps=steps, device=device)
        for img, n in zip(imgs, names[i:i + batch_size]):
            written.append(save_image_atomic(img, out / f"{n}.png"))
            print(written[-1])
    return written

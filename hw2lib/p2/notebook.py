"""What the P2 notebook shows: the eta grid, the MSE table, slerp vs lerp, computed prose."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..images import minmax, unit_to_uint8
from .ddim import (CONVENTIONS, DEFAULT_CONVENTION, N_STEPS, ddim_faces, diffusers_reference,
                   interpolate, sample_uint8)
from .folders import load_noises, mse_255, write_noises
from .models import load_course_unet, load_face_model


@dataclass(frozen=True)
class FaceSetup:
    """What the P2 notebook works on, in either mode."""
    eps_model: object
    noises: torch.Tensor  # (N, C, H, W) on the CPU
    names: list
    gt: np.ndarray | None  # uint8 (N, H, W, C) ground truth for eta = 0, or None
    gt_source: str
    model_name: str
    device: torch.device = torch.device("cpu")
    facts: dict = field(default_factory=dict)  # embedded: grey, params, steps (the manifest's)


def setup(mode: str, *, data_dir="", unet_module="", face_ckpt="", noise_dir="",
          seed: int = 0, device="cpu") -> FaceSetup:
    """Embedded: the project's face model, fixed noises written once into ``noise_dir``, and the
    ground truth drawn by diffusers. Course: the user's UNet.py + hw2_data/face."""
    from ..data import load_images, read_face
    from ..device import resolve
    from ..errors import MissingInput
    dev = resolve(device)
    if mode == "course":
        if not unet_module:
            raise MissingInput("course mode needs the course's UNet.py: make report MODE=course "
                               "DATA=hw2_data UNET_MODULE=/path/to/UNet.py")
        face = read_face(data_dir)
        eps_model = load_course_unet(unet_module, face.unet_ckpt, device=dev)
        noises, names = load_noises(face.noise_paths[0].parent)
        return FaceSetup(eps_model, noises, names, load_images(face.gt_paths),
                         "hw2_data/face/GT", f"course UNet ({face.unet_ckpt.name})", dev)
    eps_model, unet = load_face_model(face_ckpt)
    unet.to(dev)
    size = unet.config.sample_size
    write_noises(noise_dir, shape=(3, size, size), seed=seed)
    noises, names = load_noises(noise_dir)
    gt = unit_to_uint8(minmax(diffusers_reference(eps_model, noises.to(dev)).cpu()))
    manifest = Path(face_ckpt) / "manifest.json"
    run = json.loads(manifest.read_text()) if manifest.exists() else {}
    facts = {"grey": unet.config.in_channels == 1,
             "params": sum(p.numel() for p in unet.parameters()),
             "steps": run.get("steps_done"), "train_images": run.get("n_train_images")}
    return FaceSetup(eps_model, noises, names, gt,
                     "diffusers' DDIMScheduler (η = 0) on the same model",
                     f"embedded face DDPM ({Path(face_ckpt).name})", dev, facts)


def eta_grid(eps_model, noises, etas, *, convention: str = DEFAULT_CONVENTION,
             seed: int = 0, device="cpu", steps: int = N_STEPS) -> np.ndarray:
    """uint8 (len(etas), N, H, W, C): one row per eta, the same noises in every row."""
    return np.stack([sample_uint8(eps_model, noises, eta=e, convention=convention, seed=seed,
                                  device=device, steps=steps) for e in etas])


def grain_draws(eps_model, noises, etas, *, draws: int = 10, convention: str = DEFAULT_CONVENTION,
                seed: int = 0, device="cpu", steps: int = N_STEPS) -> np.ndarray:
    """Fine detail and grain (:func:`_detail`) of each noise's face at each eta over ``draws``
    draws of the added noise: (len(etas), draws, N). Draw 0 is the grid's (:func:`eta_grid`:
    image ids 0..N-1), draw d uses image ids d*N..d*N+N-1; eta = 0 has one face per noise,
    repeated."""
    def grain(e, k):  # (k, N): k draws of the added noise for every noise
        x = noises.repeat(k, 1, 1, 1)
        return _detail(sample_uint8(eps_model, x, eta=e, convention=convention, seed=seed,
                                    device=device, steps=steps)).reshape(k, len(noises))
    # eta = 0 adds no noise: one draw stands for all
    return np.stack([grain(e, draws) if e > 0 else grain(e, 1).repeat(draws, 0) for e in etas])


def nearest_training(grid: np.ndarray, train: torch.Tensor, *, mirrored: bool = False) -> dict:
    """Whether the grid's faces are copies of training faces: the root-mean-square grey-level
    distance (0-255, both min-max normalised as the course saves) from each face (len(etas), N)
    to its nearest training face, against each training face's distance to its nearest other
    face. ``train``: float (M, C, H, W) in [-1, 1]; ``mirrored``: its second half mirrors the
    first (:func:`~hw2lib.p2.face_training_images`), so a face's mirror is not another face."""
    t = 255 * minmax(train.double().mean(1, keepdim=True)).flatten(1).numpy()
    g = grid.astype(np.float64).mean(-1).reshape(*grid.shape[:2], -1)

    def dist(a, b):
        return np.sqrt(np.maximum((a * a).sum(-1)[:, None] + (b * b).sum(-1)[None]
                                  - 2 * a @ b.T, 0) / a.shape[-1])
    tt = dist(t, t)
    np.fill_diagonal(tt, np.inf)
    if mirrored:  # face i and its mirror i + M/2 are one face
        i = np.arange(len(t) // 2)
        tt[i, i + len(i)] = tt[i + len(i), i] = np.inf
    return {"faces": np.stack([dist(row, t).min(1) for row in g]), "train": tt.min(1)}


# Column names of the tables (headers the report shows).
ETA = "η"
ETA_DIFF = "mean difference from the η = 0 face (0-255)"
ETA_DIFF_MAX = "largest, over the noises"
ETA_LAYOUT = "layout correlation with the η = 0 face"
ETA_GRAIN = "fine detail and grain (mean abs. Laplacian, 0-255)"


def _coarse(grid: np.ndarray, block: int = 4) -> np.ndarray:
    """Grey level of each ``block`` x ``block`` square: (..., H, W, C) uint8 -> (..., H/b * W/b)."""
    g = grid.astype(np.float64).mean(-1)
    *lead, h, w = g.shape
    g = g.reshape(*lead, h // block, block, w // block, block).mean((-3, -1))
    return g.reshape(*lead, -1)


def _detail(images: np.ndarray) -> np.ndarray:
    """Mean absolute 3 x 3 Laplacian of the grey level (channel mean, 0-255) of uint8 images
    (..., H, W, C): edges, texture and grain raise it, blur lowers it."""
    g = images.astype(np.float64).mean(-1)
    lap = (g[..., :-2, 1:-1] + g[..., 2:, 1:-1] + g[..., 1:-1, :-2] + g[..., 1:-1, 2:]
           - 4 * g[..., 1:-1, 1:-1])
    return np.abs(lap).mean((-2, -1))


def _corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis."""
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    return (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))


def eta_stats(grid: np.ndarray, etas, draws: np.ndarray | None = None):
    """Per eta (rows), from the uint8 grid (len(etas), N, H, W, C) of :func:`eta_grid`: the mean
    absolute difference (0-255) of each face from the eta = 0 face of the same noise (mean over
    the noises, and the largest); the Pearson correlation of its coarse layout (grey levels of
    4 x 4 squares, less the grid's mean face) with that of the eta = 0 face (mean over the
    noises); fine detail and grain (:func:`_detail`, mean over the noises). ``attrs``:
    "grain_per_face" (len(etas) lists of N); "layout_between_noises", the same correlation
    between the eta = 0 faces of different noises (what "unrelated" measures);
    "channels_mean" and "channels_max", the difference between the largest and smallest colour
    channel of a pixel over the whole grid (0 for grey images); "tint_max", the largest
    difference between the mean levels of one image's colour channels (a colour cast);
    "grain_draws", ``draws`` from :func:`grain_draws` (the grain over more draws of the added
    noise) when given; "diff_from_previous_row", each row's mean absolute difference from the
    row above (nan for the first)."""
    import pandas as pd
    ref = grid[0].astype(np.float64)
    d = np.abs(grid.astype(np.float64) - ref).reshape(len(etas), grid.shape[1], -1).mean(-1)
    coarse = _coarse(grid)
    # deviations from the grid's mean face: what all faces share (a centred face, a dark
    # border) is not counted as layout kept, so unrelated faces correlate near 0
    coarse = coarse - coarse.reshape(-1, coarse.shape[-1]).mean(0)
    layout = _corr(coarse, coarse[0][None]).mean(1)
    n = grid.shape[1]
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    pair_corr = [float(_corr(coarse[0, i], coarse[0, j])) for i, j in pairs]
    between = float(np.mean(pair_corr)) if pairs else float("nan")
    g = grid.astype(np.int16)
    spread = g.max(-1) - g.min(-1)
    grain = _detail(grid)  # (len(etas), N)
    df = pd.DataFrame({ETA: list(etas), ETA_DIFF: d.mean(1), ETA_DIFF_MAX: d.max(1),
                       ETA_LAYOUT: layout, ETA_GRAIN: grain.mean(1)})
    df.attrs["grain_per_face"] = grain.tolist()
    df.attrs["diff_from_previous_row"] = [float("nan")] + np.abs(np.diff(
        grid.astype(np.float64), axis=0)).reshape(len(etas) - 1, -1).mean(-1).tolist()
    if draws is not None:
        df.attrs["grain_draws"] = np.asarray(draws).tolist()
    means = grid.astype(np.float64).mean((-3, -2))  # (len(etas), N, C)
    df.attrs.update(layout_between_noises=between, layout_between_pairs=pair_corr,
                    channels_mean=float(spread.mean()),
                    channels_max=int(spread.max()),
                    tint_max=float((means.max(-1) - means.min(-1)).max()))
    return df


def _convention_header(c: str) -> str:
    """A table header for the MSE under alpha_bar convention ``c``."""
    return {"t": r"MSE, step $t$ with $\bar\alpha_t$, the last to $\bar\alpha_0$",
            "t-1": r"MSE, step $t$ with $\bar\alpha_{t-1}$, the last to 1"}.get(
                c, f"MSE, convention {c}")


def mse_table(s: FaceSetup, *, convention: str = DEFAULT_CONVENTION, steps: int = N_STEPS):
    """Per-image MSE (0-255) of our eta = 0 samples against the ground truth, with the other
    alpha_bar convention alongside (first column: ``convention``). Rows: noise names, then
    "mean"."""
    import pandas as pd
    if s.gt is None:
        raise ValueError("no ground truth in this setup")
    other = next(c for c in CONVENTIONS if c != convention)
    faces = {c: sample_uint8(s.eps_model, s.noises, convention=c, device=s.device, steps=steps)
             for c in (convention, other)}
    df = pd.DataFrame({_convention_header(c): mse_255(f, s.gt) for c, f in faces.items()},
                      index=s.names)
    # what an MSE this small is made of: the 8-bit values that differ at all
    first = faces[convention].reshape(len(s.gt), -1)
    df[differ_col(first.shape[1])] = (first != np.asarray(s.gt).reshape(len(s.gt), -1)).sum(
        1).astype(np.float64)  # float: the mean row follows
    df.loc["mean"] = df.mean()
    df.attrs["gt_source"] = s.gt_source
    return df


# Column names of the interpolation table; the per-path ones take "slerp" or "lerp".
ALPHA = "α"
PATH_DIFF = "slerp against lerp: mean difference (0-255)"


def differ_col(n: int) -> str:
    return f"8-bit values that differ, of {n:,} per image (first column)"


def norm_col(how: str) -> str:
    return f"{how}: noise norm relative to the first noise"


def std_col(how: str) -> str:
    return f"{how}: face contrast (pixel std)"


def detail_col(how: str) -> str:
    return f"{how}: face detail (mean abs. Laplacian, 0-255)"


def table_formats(table) -> dict:
    """show.table formats of the η, interpolation and MSE tables: one number of decimals per
    column (grey levels to 0.1, correlations to 0.01, norms and contrasts to 0.001; an MSE to
    0.01, or to 0.000001 in a column where every value is below 0.01)."""
    fmt = {c: "{:.6f}" if float(table[c].abs().max()) < 0.01 else "{:.2f}"
           for c in table.columns if str(c).startswith("MSE")}
    fmt |= {c: "{:,.6g}" for c in table.columns if str(c).startswith("8-bit values")}  # 1, 0.5
    fmt |= {ETA: "{:g}", ETA_DIFF: "{:.1f}", ETA_DIFF_MAX: "{:.1f}", ETA_LAYOUT: "{:.2f}",
            ETA_GRAIN: "{:.1f}", ALPHA: "{:.1f}", PATH_DIFF: "{:.1f}"}
    for how in ("slerp", "lerp"):
        fmt.update({norm_col(how): "{:.3f}", std_col(how): "{:.3f}", detail_col(how): "{:.1f}"})
    return {k: v for k, v in fmt.items() if k in table.columns}


def interpolation_rows(eps_model, x0, x1, alphas, *, convention: str = DEFAULT_CONVENTION,
                       device="cpu", normalise: bool = False, steps: int = N_STEPS):
    """Faces along both paths between the noises x0 and x1 (each (1, C, H, W)): ({"slerp": uint8
    images, "lerp": ...}, table). The images keep the model's own range (``normalise=False``)
    so that a loss of contrast shows. The table has, per alpha (:data:`ALPHA`) and path, the
    noise's norm relative to |x0| (:func:`norm_col`), the face's pixel standard deviation in
    the model's range clamped to [-1, 1] (its contrast, :func:`std_col`) and its fine detail
    (:func:`_detail` of the image shown, :func:`detail_col`), and the mean absolute difference
    between the two paths' faces (:data:`PATH_DIFF`)."""
    import pandas as pd
    rows, table = {}, {ALPHA: np.asarray(alphas, dtype=float)}
    for how in ("slerp", "lerp"):
        z = interpolate(x0, x1, alphas, how)
        x = ddim_faces(eps_model, z.to(device), convention=convention, steps=steps).cpu()
        rows[how] = unit_to_uint8(minmax(x) if normalise else (x.clamp(-1, 1) + 1) / 2)
        table[norm_col(how)] = (z.flatten(1).norm(dim=1) / x0.norm()).numpy()
        table[std_col(how)] = x.clamp(-1, 1).flatten(1).std(dim=1).numpy()
        table[detail_col(how)] = _detail(rows[how])
    table[PATH_DIFF] = np.abs(rows["slerp"].astype(float) -
                              rows["lerp"].astype(float)).reshape(len(alphas), -1).mean(1)
    return rows, pd.DataFrame(table)


def explorer(eps_model, noises, *, convention: str = DEFAULT_CONVENTION, device="cpu"):
    """ipywidgets sliders for eta and the slerp alpha between noises 00 and 01 (JupyterLab)."""
    import ipywidgets as W
    import matplotlib.pyplot as plt

    def show(eta=0.0, alpha=0.5, how="slerp"):
        z = interpolate(noises[0:1], noises[1:2], [alpha], how)
        img = sample_uint8(eps_model, z, eta=eta, convention=convention, device=device)[0]
        plt.figure(figsize=(2.5, 2.5))
        plt.imshow(img)
        plt.axis("off")
        plt.title(f"{how}, $\\alpha$ = {alpha:.2f}, $\\eta$ = {eta:.2f}", fontsize=8)
        plt.show()

    return W.interactive(show, eta=W.FloatSlider(value=0.0, min=0, max=1, step=0.05),
                         alpha=W.FloatSlider(value=0.5, min=0, max=1, step=0.05),
                         how=W.ToggleButtons(options=["slerp", "lerp"]))

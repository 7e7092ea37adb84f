"""Problem 2: DDIM on a face UNet from fixed noises; eta grid, MSE against ground truth, slerp.

Reuses :func:`hw2lib.diffusion.ddim_sample`; this module adds the course's conventions (grid
981, 961, ..., 1; x0-hat clamped; min-max normalised outputs; MSE on 0-255), the course UNet
loader, the embedded face model and the embedded ground truth drawn by diffusers.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .diffusion import (Schedule, ddim_sample, ddim_timesteps, image_generators, lerp,
                        linear_schedule, slerp)
from .errors import InputError, MissingInputError
from .files import load_state_dict_file
from .nets.unet import UNetConfig
from .train import TrainConfig, train_and_export

T = 1000
N_STEPS = 50
# Where the two public conventions differ: which alpha_bar goes with grid step t, and what the
# step after the last one (t = 1) moves to.
#   "t":   alpha_bar[t]   on 981, ..., 1, then alpha_bar[0]  (diffusers DDIMScheduler with
#          steps_offset=1, set_alpha_to_one=False: the embedded ground truth's convention)
#   "t-1": alpha_bar[t-1] on 981, ..., 1, then 1.0           (the DDIM paper's code read on an
#          offset grid)
CONVENTIONS = {"t": dict(alpha_bar_shift=0, final="alpha_bar[0]"),
               "t-1": dict(alpha_bar_shift=1, final=1.0)}
DEFAULT_CONVENTION = "t"

# ~0.7M parameters, 32x32, attention only at 8x8 (issue 4: ~2,000 steps give face-like samples).
FACE_UNET = UNetConfig(sample_size=32, block_out_channels=(16, 32, 64), layers_per_block=1,
                       down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
                       attention_head_dim=16, norm_num_groups=8)


def ddim_faces(eps_model, noise: torch.Tensor, *, eta: float = 0.0, schedule: Schedule | None = None,
               convention: str = DEFAULT_CONVENTION, seed: int = 0,
               image_ids=None, steps: int = N_STEPS) -> torch.Tensor:
    """The course's DDIM: 50 steps on 981, ..., 1, x0-hat clamped to [-1, 1] (``steps``: fewer
    only for the rehearsal, which runs every stage at minimal cost). ``noise``: x_T
    (B, C, H, W). Returns x_0 (B, C, H, W), not normalised. The eta > 0 noise of image i comes
    from its own generator seeded by (``seed``, ``image_ids[i]``) (default ids 0..B-1), so it
    does not depend on how the images are batched."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {list(CONVENTIONS)}, got {convention!r}")
    schedule = schedule or linear_schedule(T)
    conv = CONVENTIONS[convention]
    final = float(schedule.alpha_bar[0]) if conv["final"] == "alpha_bar[0]" else conv["final"]
    res = ddim_sample(eps_model, schedule, timesteps=ddim_timesteps(schedule.T, steps, offset=1),
                      eta=eta, noise=noise, clip_x0=True, final_alpha_bar=final,
                      alpha_bar_shift=conv["alpha_bar_shift"],
                      generator=image_generators(seed, range(len(noise)) if image_ids is None
                                                 else image_ids))
    return res.sample


def minmax(x: torch.Tensor) -> torch.Tensor:
    """Each image of (B, C, H, W) scaled to [0, 1] by its own min and max (the course's save)."""
    flat = x.flatten(1)
    lo, hi = flat.min(1).values.view(-1, 1, 1, 1), flat.max(1).values.view(-1, 1, 1, 1)
    return (x - lo) / (hi - lo).clamp_min(1e-12)


def to_uint8(x01: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) in [0, 1] -> uint8 (B, H, W, C), rounded as torchvision's save_image does."""
    return (x01 * 255 + 0.5).clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()


def mse_255(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-image MSE on the 0-255 scale: mean over pixels and channels of (pred - gt)^2."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"shapes differ: prediction {pred.shape}, ground truth {gt.shape}")
    return ((pred - gt) ** 2).reshape(len(pred), -1).mean(1)


def _image_files(folder, what: str) -> dict:
    """{stem: path} of the images in ``folder``; two images with one stem are an error."""
    from .data.course import IMAGE_EXT
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
    from .data.course import CourseDataError, Problem, load_images
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


def interpolate(x0: torch.Tensor, x1: torch.Tensor, alphas, how: str = "slerp") -> torch.Tensor:
    """Noises between x0 and x1 (each (1, C, H, W)) at ``alphas``: (len(alphas), C, H, W)."""
    f = {"slerp": slerp, "lerp": lerp}[how]
    return torch.cat([f(x0, x1, float(a)) for a in alphas])


# ------------------------------------------------------------------------------------ noises
def noise_paths(noise_dir) -> list[Path]:
    paths = sorted(Path(noise_dir).glob("*.pt"))
    if not paths:
        raise MissingInputError(f"no noise files (00.pt, 01.pt, ...) in {noise_dir}")
    return paths


def load_noises(noise_dir) -> tuple[torch.Tensor, list[str]]:
    """(noises (N, C, H, W), names ["00", ...]) from ``noise_dir/*.pt``, each file validated by
    :func:`hw2lib.data.course.parse_noise_file` (one finite float (1, C, H, W) tensor, all of
    one shape); every problem is listed at once."""
    from .data.course import CourseDataError, Problem, parse_noise_file
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


# ------------------------------------------------------------------------------------ models
def load_course_unet(module_path, ckpt_path, device="cpu"):
    """The course's ``UNet`` class imported from the user's ``UNet.py``, with ``UNet.pt`` loaded
    strictly. Returns ``eps_model(x, t)``."""
    module_path, ckpt_path = Path(module_path), Path(ckpt_path)
    for p, what in ((module_path, "the course's UNet.py (--unet-module)"),
                    (ckpt_path, "the course's UNet.pt (--unet-ckpt)")):
        if not p.exists():
            raise MissingInputError(f"{p} not found: give the path of {what}")
    spec = importlib.util.spec_from_file_location("course_unet", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "UNet"):
        raise InputError(f"{module_path} defines no class UNet")
    model = module.UNet()
    sd = load_state_dict_file(ckpt_path)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise InputError(f"{ckpt_path} does not fit UNet of {module_path}: missing keys "
                         f"{missing[:10]}, unexpected keys {unexpected[:10]}")
    model.eval().to(device)
    from .precision import autocast

    def eps_model(x, t):
        with autocast(x.device):
            return model(x, t).float()
    return eps_model


def load_face_model(ckpt_dir):
    """The embedded face UNet: ``eps_model(x, t)``, and the UNet itself."""
    from .nets.unet import eps_fn
    from .train import load_checkpoint
    unet, _, _ = load_checkpoint(ckpt_dir)
    return eps_fn(unet), unet


def face_training_images(size: int = 32) -> torch.Tensor:
    """The 100 LFW faces resized to ``size`` and their mirror images: (200, 3, size, size) in
    [-1, 1] (grey replicated to three channels, the course's noise format)."""
    from skimage.transform import resize
    from .data import build_faces
    faces = np.stack([resize(f, (size, size), anti_aliasing=True) for f in build_faces()])
    faces = np.concatenate([faces, faces[:, :, ::-1]])
    x = torch.from_numpy(faces.astype(np.float32))[:, None].repeat(1, 3, 1, 1)
    return x * 2 - 1


def train_face_model(out_dir, cfg: TrainConfig, *, command: str = "", export: str = "ema",
                     progress: bool = True):
    """Unconditional DDPM on the LFW faces (embedded stand-in for the course's face UNet)."""
    images = face_training_images(FACE_UNET.sample_size)
    return train_and_export(FACE_UNET, images, None, cfg, out_dir, T=T, command=command,
                            config_extra={"data": "skimage.data.lfw_subset()[:100], 32x32, flips"},
                            export=export, progress=progress)


def diffusers_reference(eps_model, noise: torch.Tensor) -> torch.Tensor:
    """Ground truth for eta = 0 drawn by diffusers' DDIMScheduler (an independent implementation)
    configured as the course: linear betas, 50 steps on 981..1, x0 clipped, final alpha_bar[0]."""
    from diffusers import DDIMScheduler
    sched = DDIMScheduler(num_train_timesteps=T, beta_start=1e-4, beta_end=2e-2,
                          beta_schedule="linear", clip_sample=True, clip_sample_range=1.0,
                          set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading")
    sched.set_timesteps(N_STEPS)
    x = noise.clone()
    with torch.inference_mode():
        for t in sched.timesteps:
            eps = eps_model(x, torch.full((len(x),), int(t), dtype=torch.long, device=x.device))
            x = sched.step(eps, t, x, eta=0.0).prev_sample
    return x


# ------------------------------------------------------------------------- notebook helpers
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


def setup(mode: str, *, data_dir="", unet_module="", face_ckpt="", noise_dir="",
          seed: int = 0, device="cpu") -> FaceSetup:
    """Embedded: the project's face model, fixed noises written once into ``noise_dir``, and the
    ground truth drawn by diffusers. Course: the user's UNet.py + hw2_data/face."""
    from .data import load_images, read_face
    from .device import resolve
    from .errors import MissingInput
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
    gt = to_uint8(minmax(diffusers_reference(eps_model, noises.to(dev)).cpu()))
    return FaceSetup(eps_model, noises, names, gt, "diffusers' DDIMScheduler (eta = 0) on the same model",
                     f"embedded face DDPM ({Path(face_ckpt).name})", dev)


def sample_uint8(eps_model, noise, *, eta: float = 0.0, convention: str = DEFAULT_CONVENTION,
                 seed: int = 0, image_ids=None, device="cpu",
                 normalise: bool = True, steps: int = N_STEPS) -> np.ndarray:
    """ddim_faces -> min-max (the course's save; ``normalise=False``: the model's [-1, 1] range
    as it is, clamped) -> uint8 (B, H, W, C)."""
    x = ddim_faces(eps_model, noise.to(device), eta=eta, convention=convention, seed=seed,
                   image_ids=image_ids, steps=steps).cpu()
    return to_uint8(minmax(x) if normalise else (x.clamp(-1, 1) + 1) / 2)


def eta_grid(eps_model, noises, etas, *, convention: str = DEFAULT_CONVENTION,
             seed: int = 0, device="cpu", steps: int = N_STEPS) -> np.ndarray:
    """uint8 (len(etas), N, H, W, C): one row per eta, the same noises in every row."""
    return np.stack([sample_uint8(eps_model, noises, eta=e, convention=convention, seed=seed,
                                  device=device, steps=steps) for e in etas])


def eta_stats(grid: np.ndarray, etas):
    """Per eta: mean absolute difference (0-255) of each face from the eta = 0 face of the same
    noise, and its largest value over the noises. Rows: eta."""
    import pandas as pd
    ref = grid[0].astype(np.float64)
    d = np.abs(grid.astype(np.float64) - ref).reshape(len(etas), grid.shape[1], -1).mean(-1)
    return pd.DataFrame({"eta": list(etas), "mean |x - x(eta=0)|": d.mean(1),
                         "largest over the noises": d.max(1)})


def mse_table(s: FaceSetup, *, convention: str = DEFAULT_CONVENTION, steps: int = N_STEPS):
    """Per-image MSE (0-255) of our eta = 0 samples against the ground truth, with the other
    alpha_bar convention alongside. Rows: noise names, then "mean"."""
    import pandas as pd
    if s.gt is None:
        raise ValueError("no ground truth in this setup")
    other = next(c for c in CONVENTIONS if c != convention)
    cols = {f"MSE, convention {convention!r}":
                mse_255(sample_uint8(s.eps_model, s.noises, convention=convention, device=s.device,
                                     steps=steps), s.gt),
            f"MSE, convention {other!r}":
                mse_255(sample_uint8(s.eps_model, s.noises, convention=other, device=s.device,
                                     steps=steps), s.gt)}
    df = pd.DataFrame(cols, index=s.names)
    df.loc["mean"] = df.mean()
    df.attrs["gt_source"] = s.gt_source
    return df


def interpolation_rows(eps_model, x0, x1, alphas, *, convention: str = DEFAULT_CONVENTION,
                       device="cpu", normalise: bool = False, steps: int = N_STEPS):
    """Faces along both paths between the noises x0 and x1 (each (1, C, H, W)): ({"slerp": uint8
    images, "lerp": ...}, table). The images keep the model's own range (``normalise=False``)
    so that a loss of contrast shows; the table has, per alpha, each path's noise norm relative
    to |x0| and each face's pixel standard deviation before normalisation (its contrast)."""
    import pandas as pd
    rows, table = {}, {"alpha": np.asarray(alphas, dtype=float)}
    for how in ("slerp", "lerp"):
        z = interpolate(x0, x1, alphas, how)
        x = ddim_faces(eps_model, z.to(device), convention=convention, steps=steps).cpu()
        rows[how] = to_uint8(minmax(x) if normalise else (x.clamp(-1, 1) + 1) / 2)
        table[f"{how}: |z| / |x0|"] = (z.flatten(1).norm(dim=1) / x0.norm()).numpy()
        table[f"{how}: face std"] = x.clamp(-1, 1).flatten(1).std(dim=1).numpy()
    table["|slerp - lerp| (0-255)"] = np.abs(rows["slerp"].astype(float) -
                                             rows["lerp"].astype(float)).reshape(len(alphas), -1).mean(1)
    return rows, pd.DataFrame(table)


def eta_observation(stats) -> str:
    """P2.1's observation, from :func:`eta_stats` of the grid shown (numbers computed, the
    direction of each claim read from them)."""
    d = stats["mean |x - x(eta=0)|"].to_numpy()
    etas = stats["eta"].to_numpy()
    rising = bool(np.all(np.diff(d) >= -0.5))
    trend = ("grows steadily with eta" if rising else "grows with eta, though not steadily")
    return (
        f"**Observation.** The row eta = 0 is DDIM's deterministic map from each noise to a face. "
        f"Every eta > 0 adds fresh Gaussian noise of standard deviation $\\sigma_t$ at each of the 50 "
        f"steps (each image's added noise comes from its own seeded generator, the same in every "
        f"row, scaled by $\\sigma_t$), so the faces depart from the "
        f"eta = 0 row: their mean absolute difference from it {trend}, from "
        f"{d[1]:.1f} at eta = {etas[1]:g} to {d[-1]:.1f} at eta = {etas[-1]:g} (0-255 scale; "
        f"largest single face {stats['largest over the noises'].max():.1f}). With small eta the "
        f"faces keep the layout the starting noise fixed (pose, face position, lighting) and "
        f"change in detail; at eta = 1 the sampler is DDPM's ancestral sampler on the 50-step "
        f"grid, where the noise added along the way has as much say as the starting noise and "
        f"rewrites the details that eta = 0 derives from $x_T$ alone. That one-to-one map from "
        f"$x_T$ to an image is what lets DDIM with eta = 0 interpolate between noises (P2.2).")


def interpolation_observation(table) -> str:
    """P2.2's observation, from :func:`interpolation_rows`' table."""
    mid = int(np.argmin(np.abs(table["alpha"].to_numpy() - 0.5)))
    a = table["alpha"].iloc[mid]
    n_l, n_s = table["lerp: |z| / |x0|"].iloc[mid], table["slerp: |z| / |x0|"].iloc[mid]
    c_l, c_s = table["lerp: face std"].iloc[mid], table["slerp: face std"].iloc[mid]
    c_ends = table["lerp: face std"].iloc[[0, -1]].mean()
    ends = f"at the end points, where both paths meet the real noises, {c_ends:.3f}"
    if c_l < 0.95 * c_s:
        seen = (f"the lerp face is washed out: pixel standard deviation {c_l:.3f} against "
                f"{c_s:.3f} for slerp at alpha = {a:.1f} ({ends}), as expected of a noise that "
                f"is too short")
    else:
        seen = (f"this small model barely reacts to the shorter noise: pixel standard deviation "
                f"{c_l:.3f} for lerp against {c_s:.3f} for slerp at alpha = {a:.1f} ({ends}), and "
                f"the two rows differ by {table['|slerp - lerp| (0-255)'].max():.1f} at most on "
                f"the 0-255 scale (mean absolute difference per face), too little to see. A face "
                f"model trained on real 256-pixel faces, such as the course's, is where the "
                f"washed-out lerp middle is expected")
    return (
        f"**Observation.** Two independent Gaussian noises of dimension d are nearly orthogonal "
        f"with norms near $\\sqrt{{d}}$, so their linear mix at alpha = {a:.1f} has a norm of only "
        f"{n_l:.2f} of $\\lVert x_0 \\rVert$ ($\\sqrt{{0.5}} = 0.71$ for exactly orthogonal noises of "
        f"equal norm), while slerp keeps it at {n_s:.2f}. The model was trained on $x_T$ of norm "
        f"$\\sqrt{{d}}$ at $t = T$: a shorter $x_T$ is a noise it never saw, and the DDIM map of a "
        f"low-energy $x_T$ tends to a low-contrast, averaged face. Measured here, {seen}. The rows "
        f"above keep the model's own range, without the course's per-image min-max "
        f"normalisation, which would stretch the contrast back and hide a difference. Slerp moves "
        f"along the sphere where Gaussian noise lives, so every intermediate is a plausible $x_T$.")


def mse_text(table, gt_source: str, mode: str) -> str:
    """What the MSE table means, in either mode."""
    conv = [c for c in table.columns]
    mean_a, mean_b = table.loc["mean", conv[0]], table.loc["mean", conv[1]]
    what = ("an independent implementation of the same sampler (diffusers' DDIMScheduler, "
            "configured as the course specifies) on the same embedded model and noises: a "
            "value near 0 says our DDIM computes what diffusers computes, to the rounding of "
            "8-bit images. It is not the course's ground truth, which needs the course's UNet"
            if mode == "embedded" else
            "the course's ground-truth images face/GT, which the course's grader compares with "
            "the eta = 0 outputs")
    return (f"Mean MSE {mean_a:.3g} with the alpha_bar convention of the first column, "
            f"{mean_b:.3g} with the other (0-255 scale). The ground truth here is {what}. "
            f"The two conventions differ in which alpha_bar goes with a grid step $t = 981, \\dots, 1$ "
            f"($\\bar\\alpha_t$ or $\\bar\\alpha_{{t-1}}$) and where the last step lands ($\\bar\\alpha_0$ "
            f"or 1); public solutions use both.")


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
        plt.title(f"{how} alpha={alpha:.2f} eta={eta:.2f}", fontsize=8)
        plt.show()

    return W.interactive(show, eta=W.FloatSlider(value=0.0, min=0, max=1, step=0.05),
                         alpha=W.FloatSlider(value=0.5, min=0, max=1, step=0.05),
                         how=W.ToggleButtons(options=["slerp", "lerp"]))

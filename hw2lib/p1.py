"""Problem 1: one class-conditional DDPM for both digit sets, with classifier-free guidance.

The class label joins the data set and the digit: ``label = 10 * set_index + digit`` (0-19), and
20 is the null label of guidance dropout. One model serves both sets: it halves the training
cost on 2 CPU cores and lets digit shapes be shared between the two looks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .data import DIGIT_SETS, DigitSet
from .diffusion import classifier_free_guidance, ddim_sample, ddim_timesteps, ddpm_sample
from .errors import InputError, MissingInputError
from .nets.unet import UNetConfig, eps_fn
from .train import TrainConfig, load_checkpoint, train_and_export
from .viz import to_model_range, to_uint8

NULL_LABEL = 20
T = 1000
# Sized for 2 AVX2 cores in fp32 (no AMX here, bf16 is ~100x slower): 1.5M parameters,
# attention only at 7x7.
P1_UNET = UNetConfig(sample_size=28, block_out_channels=(24, 48, 96), layers_per_block=1,
                     down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                     up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
                     attention_head_dim=24, norm_num_groups=8, num_class_embeds=21)


def class_label(set_name: str, digit) -> torch.Tensor:
    """The model's class label for digit(s) of a data set."""
    return torch.as_tensor(digit, dtype=torch.long) + 10 * DIGIT_SETS.index(set_name)


def training_tensors(sets: dict[str, DigitSet]) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sets' training splits as one (images in [-1, 1], class labels) pair."""
    xs, ys = zip(*[(to_model_range(ds.x_train), class_label(name, ds.y_train))
                   for name, ds in sets.items()])
    return torch.cat(xs), torch.cat(ys)


def train(sets: dict[str, DigitSet], out_dir, cfg: TrainConfig, *, unet_cfg: UNetConfig = P1_UNET,
          command: str = "", export: str = "ema", progress: bool = True) -> Path:
    """Train the conditional DDPM and export it into ``out_dir`` (see :func:`train_and_export`)."""
    images, labels = training_tensors(sets)
    return train_and_export(unet_cfg, images, labels, cfg, out_dir, T=T, null_label=NULL_LABEL,
                            config_extra={"sets": list(sets)}, command=command,
                            manifest_extra={"data_fingerprints": {n: ds.fingerprint
                                                                  for n, ds in sets.items()}},
                            export=export, progress=progress)


def load(ckpt_dir):
    """(unet in eval mode, schedule, config dict) from a directory written by :func:`train`."""
    return load_checkpoint(ckpt_dir)


def sample(unet, schedule, set_name: str, digits, *, sampler: str = "ddim", steps: int = 50,
           w: float = 2.0, seed: int = 0, eta: float = 0.0, clip_x0: bool = True, record=(),
           batch_size: int = 250, progress: bool = False):
    """Draw one image per entry of ``digits`` from ``set_name``. Returns (uint8 (N, 28, 28, 3),
    trajectory {t: x_t} of the first batch). Noise comes from one generator seeded by ``seed``;
    images are drawn in batches of ``batch_size``. ``clip_x0`` clamps x0-hat to the data range
    [-1, 1] at every step (diffusers' default ``clip_sample=True``): at large t an eps error is
    multiplied by 1/sqrt(alpha_bar_t) (~160 at t = 980) in x0-hat, and without the clamp a
    small model's trajectories drift out of range."""
    if sampler not in ("ddpm", "ddim"):
        raise ValueError(f"sampler must be 'ddpm' or 'ddim', got {sampler!r}")
    digits = torch.as_tensor(np.asarray(digits), dtype=torch.long)
    eps = classifier_free_guidance(eps_fn(unet), w, cond_key="y", null_value=NULL_LABEL)
    g = torch.Generator().manual_seed(seed)
    shape = (3, unet.config.sample_size, unet.config.sample_size)
    out, traj = [], {}
    for i in range(0, len(digits), batch_size):
        y = class_label(set_name, digits[i:i + batch_size])
        noise = torch.randn((len(y), *shape), generator=g)
        kw = dict(noise=noise, generator=g, cond={"y": y}, clip_x0=clip_x0,
                  record=record if i == 0 else (), progress=progress)
        if sampler == "ddpm":
            res = ddpm_sample(eps, schedule, **kw)
        else:
            res = ddim_sample(eps, schedule, timesteps=ddim_timesteps(schedule.T, steps),
                              eta=eta, **kw)
        out.append(to_uint8(res.sample))
        traj = traj or res.trajectory
    return np.concatenate(out), traj


def reverse_process(unet, schedule, set_name: str, digit: int = 0, *,
                    steps_shown=(999, 800, 600, 400, 200), seed: int = 0, w: float = 2.0):
    """One digit drawn by DDPM-1000: x_t at ``steps_shown`` and the final x_0.

    Returns (uint8 (len(steps_shown) + 1, 28, 28, 3), column labels)."""
    x0, traj = sample(unet, schedule, set_name, [digit], sampler="ddpm", w=w, seed=seed,
                      record=steps_shown)
    frames = [to_uint8(traj[t])[0] for t in steps_shown] + [x0[0]]
    return np.stack(frames), [f"t={t}" for t in steps_shown] + ["x0"]


def write_grading_folder(out_dir, set_name: str, images: np.ndarray, digits, *,
                         overwrite: bool = False) -> Path:
    """The course's layout: ``<out>/<set>/{digit}_{NNN}.png``, NNN = 001.. per digit. The set is
    written into a temporary folder and moved into place; an existing non-empty set folder is
    refused unless ``overwrite`` (older files would be graded with the new ones)."""
    from PIL import Image

    from .files import replace_folder
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
    from .data import load_images
    paths = sorted(p for p in Path(folder).glob("*.png"))
    if not paths:
        raise MissingInputError(f"no PNG images in {folder}")
    bad = [p.name for p in paths if not p.name[0].isdigit()]
    if bad:
        raise InputError(f"{folder}: file names must start with the digit: {bad[:5]}")
    return load_images(paths, size=28), np.array([int(p.name[0]) for p in paths])


def scorers(classifier_ckpt, course_classifier=None) -> dict:
    """{"project CNN": model, ["course LeNet": model]} for :func:`score_table`."""
    from .classifier import load_classifier, load_course_classifier
    out = {"project CNN": load_classifier(classifier_ckpt)}
    if course_classifier:
        out["course LeNet"] = load_course_classifier(course_classifier)
    return out


def score_table(samples: dict, digits, scorers: dict):
    """Accuracy per set (rows, plus their average) and classifier (columns). The course's LeNet
    was trained on MNIST-M only, so it scores only that set."""
    import pandas as pd
    from .classifier import accuracy
    table = {name: {s: (accuracy(m, imgs, digits) if s != "course LeNet" or name == "mnistm"
                        else np.nan) for s, m in scorers.items()}
             for name, imgs in samples.items()}
    df = pd.DataFrame.from_dict(table, orient="index")
    df.loc["average"] = df.mean()
    return df


def guidance_sweep(unet, schedule, set_names, ws, scorers: dict, *, per_digit: int = 5,
                   sampler: str = "ddim", steps: int = 50, seed: int = 0):
    """Project-CNN accuracy for each guidance weight w and set, on ``per_digit`` images per
    digit drawn from the same noises for every w. Returns (DataFrame rows w, {(w, set): images})."""
    import pandas as pd
    from .classifier import accuracy
    digits = np.repeat(np.arange(10), per_digit)
    model = scorers["project CNN"]
    rows, images = {}, {}
    for w in ws:
        for k, name in enumerate(set_names):
            images[(w, name)], _ = sample(unet, schedule, name, digits, sampler=sampler,
                                          steps=steps, w=w, seed=seed + k)
            rows.setdefault(w, {})[name] = accuracy(model, images[(w, name)], digits)
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "w"
    return df, images


def explorer(unet, schedule, set_names, *, n: int = 8, seed: int = 0):
    """ipywidgets: guidance weight, digit, set and DDIM steps -> ``n`` samples from fixed noises
    (JupyterLab; continuous_update off, so a draw happens when a slider is released)."""
    import ipywidgets as W
    import matplotlib.pyplot as plt

    def show(w=2.0, digit=0, set_name=set_names[0], steps=20):
        imgs, _ = sample(unet, schedule, set_name, [digit] * n, steps=steps, w=w, seed=seed)
        fig, axes = plt.subplots(1, n, figsize=(1.1 * n, 1.4))
        for ax, img in zip(axes, imgs):
            ax.imshow(img)
            ax.axis("off")
        fig.suptitle(f"{set_name}: digit {digit}, w={w:g}, DDIM-{steps}", fontsize=9)
        plt.show()

    slider = dict(continuous_update=False)
    return W.interactive(show, w=W.FloatSlider(value=2.0, min=0, max=6, step=0.5, **slider),
                         digit=W.IntSlider(value=0, min=0, max=9, **slider),
                         set_name=W.ToggleButtons(options=list(set_names)),
                         steps=W.IntSlider(value=20, min=5, max=100, step=5, **slider))

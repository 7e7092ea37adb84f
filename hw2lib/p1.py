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
from .diffusion import (classifier_free_guidance, ddim_sample, ddim_timesteps, ddpm_sample,
                        dpm_solver_timesteps, dpmpp_2m_sample)
from .errors import InputError, MissingInputError
from .nets.unet import UNetConfig, eps_fn
from .train import TrainConfig, load_checkpoint, train_and_export
from .viz import to_model_range, to_uint8

NULL_LABEL = 20
SAMPLERS = ("ddpm", "ddim", "dpmpp")  # ancestral DDPM-1000, DDIM, DPM-Solver++(2M)
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


def load(ckpt_dir, device="cpu"):
    """(unet in eval mode on ``device``, schedule, config dict) from a directory written by
    :func:`train`."""
    from .device import resolve
    unet, schedule, cfg = load_checkpoint(ckpt_dir)
    return unet.to(resolve(device)), schedule, cfg


def grid_noise(n: int, *, seed: int, size: int = 28) -> torch.Tensor:
    """The starting noises x_T of ``n`` samples: (n, 3, size, size) from a CPU generator seeded
    by ``seed`` (the same numbers on every device)."""
    return torch.randn((n, 3, size, size), generator=torch.Generator().manual_seed(seed))


def sampler_steps(schedule, sampler: str, steps: int) -> list[int]:
    """The time steps the sampler visits, from noisiest to cleanest."""
    if sampler == "dpmpp":
        return dpm_solver_timesteps(schedule.T, steps)
    return list(range(schedule.T - 1, -1, -1)) if sampler == "ddpm" else ddim_timesteps(schedule.T, steps)


def reverse_steps(schedule, sampler: str, steps: int, n_frames: int = 6) -> list[int]:
    """The time steps of the reverse-process strip (the sample itself is its last frame): the
    sampler's first step (pure noise), then the first steps at which the signal coefficient
    sqrt(alpha_bar_t) of x_t reaches 0.2, 0.4, 0.6 and 0.8 (for six frames). Evenly spaced
    steps would show noise in most frames: with the linear schedule the signal is below 0.1
    until t is about 650."""
    ts = sampler_steps(schedule, sampler, steps)
    signal = schedule.alpha_bar.sqrt()
    levels = [k / (n_frames - 1) for k in range(1, n_frames - 1)]
    shown = [ts[0]] + [next((t for t in ts if signal[t] >= s), ts[-1]) for s in levels]
    return list(dict.fromkeys(shown))


def sample(unet, schedule, set_name: str, digits, *, sampler: str = "ddim", steps: int = 50,
           w: float = 2.0, seed: int = 0, noise: torch.Tensor | None = None, eta: float = 0.0,
           clip_x0: bool = True, record=(), batch_size: int = 250, progress: bool = False,
           precision: str = "auto"):
    """Draw one image per entry of ``digits`` from ``set_name``. Returns (uint8 (N, 28, 28, 3),
    trajectory {t: x_t (B, 3, 28, 28) on the CPU} of the first batch). The starting noises are
    ``noise`` or :func:`grid_noise` (``seed``); the DDPM and eta > 0 noise comes from a generator
    seeded by ``seed`` as well. Images are drawn in batches of ``batch_size`` on the UNet's
    device. ``clip_x0`` clamps x0-hat to the data range [-1, 1] at every step (diffusers'
    default ``clip_sample=True``): at large t an eps error is multiplied by 1/sqrt(alpha_bar_t)
    (~160 at t = 980) in x0-hat, and without the clamp a small model's trajectories drift out
    of range. ``precision``: "auto" (bf16 autocast where :mod:`hw2lib.precision` measured it
    to pay on this machine), "fp32" or "bf16"."""
    from .device import of
    from .precision import resolve as resolve_precision
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    digits = torch.as_tensor(np.asarray(digits), dtype=torch.long)
    # one stream: x_T first (= grid_noise(seed)), then the DDPM / eta > 0 noise after it
    g = torch.Generator().manual_seed(seed)
    size = unet.config.sample_size
    drawn = torch.randn((len(digits), 3, size, size), generator=g)  # = grid_noise(n, seed=seed)
    noise = drawn if noise is None else noise
    if len(noise) != len(digits):
        raise ValueError(f"{len(noise)} noises for {len(digits)} digits")
    dev = of(unet)
    autocast = resolve_precision(precision, device=dev).autocast
    eps = classifier_free_guidance(eps_fn(unet, autocast=autocast, device_type=dev.type), w,
                                   cond_key="y", null_value=NULL_LABEL)
    out, traj = [], {}
    for i in range(0, len(digits), batch_size):
        y = class_label(set_name, digits[i:i + batch_size]).to(dev)
        kw = dict(noise=noise[i:i + batch_size].to(dev), generator=g, cond={"y": y},
                  clip_x0=clip_x0, record=record if i == 0 else (), progress=progress)
        if sampler == "ddpm":
            res = ddpm_sample(eps, schedule, **kw)
        elif sampler == "dpmpp":  # DPM-Solver++(2M): `steps` model evaluations, no eta
            res = dpmpp_2m_sample(eps, schedule, timesteps=dpm_solver_timesteps(schedule.T, steps),
                                  **kw)
        else:
            res = ddim_sample(eps, schedule, timesteps=ddim_timesteps(schedule.T, steps),
                              eta=eta, **kw)
        out.append(to_uint8(res.sample))
        traj = traj or {t: x.cpu() for t, x in res.trajectory.items()}
    return np.concatenate(out), traj


def reverse_frames(trajectory: dict, final: np.ndarray, index: int = 0):
    """The reverse process of sample ``index``: x_t at each recorded step (noisiest first),
    then the sample itself. Returns (uint8 (len(trajectory) + 1, H, W, 3), column labels)."""
    ts = sorted(trajectory, reverse=True)
    frames = [to_uint8(trajectory[t][index]) for t in ts] + [final[index]]
    return np.stack(frames), [f"t = {t}" for t in ts] + ["x_0 (in the grid)"]


def predicted_x0_frames(unet, schedule, set_name: str, digit: int, trajectory: dict, *,
                        w: float, index: int = 0) -> np.ndarray:
    """What the model predicts the clean image to be at each recorded x_t of sample ``index``
    (guided, as in sampling): x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t),
    clamped as the sampler clamps it. uint8 (len(trajectory), H, W, 3), noisiest first."""
    from .device import of
    from .diffusion import predict_x0
    dev = of(unet)
    eps = classifier_free_guidance(eps_fn(unet, device_type=dev.type), w, cond_key="y",
                                   null_value=NULL_LABEL)
    ts = sorted(trajectory, reverse=True)
    x = torch.stack([trajectory[t][index] for t in ts]).to(dev)
    tt = torch.tensor(ts, device=dev)
    with torch.inference_mode():
        e = eps(x, tt, y=class_label(set_name, [digit] * len(ts)).to(dev)).float()
        return to_uint8(predict_x0(schedule, x, tt, e).clamp(-1, 1))


def describe(unet, ckpt_dir) -> dict:
    """What P1.1 says of the network and its training, read from the model and its manifest."""
    import json
    man = json.loads((Path(ckpt_dir) / "manifest.json").read_text())
    cfg = man.get("train_config", {})
    c = unet.config
    return {"params": sum(p.numel() for p in unet.parameters()),
            "channels": tuple(c.block_out_channels), "layers_per_block": c.layers_per_block,
            "attention": [b for b in c.down_block_types if "Attn" in b],
            "n_classes": c.num_class_embeds, "steps": man.get("steps_done"),
            "batch_size": cfg.get("batch_size"), "lr": cfg.get("lr"),
            "p_uncond": cfg.get("p_uncond"), "ema_decay": cfg.get("ema_decay"),
            "warmup": cfg.get("warmup"), "wall_minutes": man.get("wall_seconds", 0) / 60,
            "weights": man.get("weights", "ema"), "n_train_images": man.get("n_train_images"),
            "attention_sizes": [c.sample_size // 2 ** i for i, b in enumerate(c.down_block_types)
                                if "Attn" in b]}


def sampler_label(sampler: str, steps: int) -> str:
    if sampler == "dpmpp":
        return f"DPM-Solver++(2M), {steps} steps"
    return "DDPM-1000 (ancestral)" if sampler == "ddpm" else f"DDIM-{steps}, eta = 0"


def network_text(d: dict) -> str:
    """P1.1's network and training paragraph, from :func:`describe`."""
    sizes = ", ".join(f"{s}x{s}" for s in d["attention_sizes"]) or "no level"
    return (f"**Network.** A diffusers `UNet2DModel` with {d['params'] / 1e6:.2f}M parameters: "
            f"channels {', '.join(map(str, d['channels']))} at 28x28, 14x14 and 7x7, "
            f"{d['layers_per_block']} residual block(s) per level, self-attention at {sizes}; the "
            f"time step enters through a sinusoidal embedding, the class through a learned "
            f"embedding of {d['n_classes']} labels (10 digits x 2 sets, and the null label) added "
            f"to it. Trained for {d['steps']:,} steps at batch {d['batch_size']}, AdamW at "
            f"learning rate {d['lr']:g} after {d['warmup']} warm-up steps, guidance dropout "
            f"p_uncond = {d['p_uncond']:g}, EMA decay {d['ema_decay']:g} (the exported weights: "
            f"{d['weights']}), on {d['n_train_images']:,} images of both sets; its training runs "
            f"took {d['wall_minutes']:.0f} minutes of wall time on a CPU (manifest.json).")


def reverse_text(schedule, shown: list[int]) -> str:
    """What the reverse-process strips show, with the signal and noise level of each frame."""
    ab = schedule.alpha_bar
    lv = "; ".join(f"$t = {t}$: {float(ab[t].sqrt()):.2f} and {float((1 - ab[t]).sqrt()):.2f}"
                   for t in shown)
    return (r"Each strip starts from the grid image's own starting noise $x_T$ and ends at the "
            r"image in the grid. The frames in between are $x_t$ as the sampler enters step $t$, "
            r"$x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1 - \bar\alpha_t}\,\epsilon$, at the steps "
            r"where the signal coefficient $\sqrt{\bar\alpha_t}$ first reaches 0.2, 0.4, 0.6 and "
            f"0.8 (signal and noise coefficients: {lv}). In the top row the digit is hard to see "
            f"until the last steps: per-pixel colour noise of standard deviation "
            f"{float((1 - ab[shown[-1]]).sqrt()):.2f} still covers it at $t = {shown[-1]}$. The "
            r"bottom row shows what the model makes of each $x_t$, its prediction "
            r"$\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\hat\epsilon) / \sqrt{\bar\alpha_t}$. "
            f"At $t = {shown[0]}$ any error of the predicted noise is multiplied by "
            rf"$1/\sqrt{{\bar\alpha_t}} = {float(1 / ab[shown[0]].sqrt()):.0f}$, so the prediction "
            "is saturated noise; a few steps later it is a blurred 0, and the colours, background "
            "texture and stroke edges come only in the last steps, where little noise is left.")


def accuracy_text(table, test_accuracy: dict, mode: str) -> str:
    """The accuracy paragraph, from :func:`score_table` and the CNN's held-out accuracy."""
    from .modes import set_label
    from .report.show import pct
    cnn = table[table.classifier == "project CNN"]
    parts = [f"{pct(r.accuracy, r.images)} of the {r['digit set']} samples"
             for _, r in cnn.iterrows()]
    held = ", ".join(f"{pct(v)} on {set_label(k, mode)}" for k, v in test_accuracy.items())
    text = (f"The project's digit CNN reads {' and '.join(parts)} as the digit they were drawn "
            f"for (± one standard error).")
    if held:
        text += (f" The CNN itself scores {held} on the held-out real test images, so it cannot "
                 f"certify more than that: part of any remaining error is the judge's.")
    lenet = table[table.classifier == "course LeNet"]
    if len(lenet):
        r = lenet.iloc[0]
        text += f" The course's MNIST-M classifier reads {pct(r.accuracy, r.images)} of them."
    return text


def sweep_text(table, guidance: float, per_point: int, names: dict) -> str:
    """The guidance paragraph, from :func:`guidance_sweep`'s table."""
    from .report.show import pct
    ws = list(table.index)
    bits = []
    for name in table.columns:
        acc = table[name]
        best = " and ".join(f"{w:g}" for w in ws if acc[w] == acc.max())
        bits.append(f"{names.get(name, name)}: {pct(acc.iloc[0])} at w = {ws[0]:g}, best "
                    f"{pct(acc.max())} at w = {best}, {pct(acc.iloc[-1])} at w = {ws[-1]:g}")
    return (f"Accuracy of the project CNN against the guidance weight ({per_point} samples per "
            f"point, the same starting noises at every w; {'; '.join(bits)}). Guidance trades "
            f"diversity for fidelity: it pushes each sample away from the unconditional "
            f"prediction and towards features that say \"this digit\", so the digits become "
            f"easier to read as w grows, until the samples over-saturate into high-contrast "
            f"blotches that no longer look like the data. The grids use w = {guidance:g}.")


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


def score_table(samples: dict, digits, scorers: dict, *, mode: str = "embedded",
                sets: dict | None = None):
    """One row per (digit set, classifier): images, correct, accuracy and its standard error.
    The course's LeNet was trained on MNIST-M only, so it scores only that set. With ``sets``
    ({name: DigitSet}), the project CNN's rows also get the look statistics of
    :func:`hw2lib.look.look_stats` against the set's held-out split (KID, mean-colour TV) and
    their train-vs-test floors."""
    import pandas as pd

    from .classifier import predict
    from .modes import set_label
    from .report.show import se
    rows = []
    for name, imgs in samples.items():
        for s, m in scorers.items():
            if s == "course LeNet" and name != "mnistm":
                continue
            correct = int(np.sum(predict(m, imgs) == np.asarray(digits)))
            p = correct / len(imgs)
            rows.append({"digit set": set_label(name, mode), "classifier": s, "images": len(imgs),
                         "correct": correct, "accuracy": p, "SE": se(p, len(imgs))})
            if sets and s == "project CNN":
                from .look import look_stats
                ds = sets[name]
                rows[-1].update({k: v for k, v in look_stats(m, imgs, ds.x_test, ds.x_train).items()
                                 if k != "KID subset"})
    return pd.DataFrame(rows)


def sweep_columns(n_cols: int, per_digit: int) -> list[int]:
    """Indices of the first ``per_digit`` columns of each digit's row in a grid of ``n_cols``."""
    return [d * n_cols + c for d in range(10) for c in range(per_digit)]


def guidance_sweep(unet, schedule, set_names, ws, classifier, *, per_digit: int, n_cols: int,
                   sampler: str = "ddim", steps: int = 50, seed: int = 0, known: dict | None = None):
    """Project-CNN accuracy for each guidance weight w and set, on the first ``per_digit``
    columns of each set's grid noises (:func:`grid_noise` with ``seed + k`` for the k-th set), so
    every w starts from the same noises and the grid's own w needs no new samples: ``known``
    ``{(w, set): grid images}`` are reused. Returns (DataFrame rows w, columns sets;
    {(w, set): uint8 images, digit-major})."""
    import pandas as pd

    from .classifier import accuracy
    digits = np.repeat(np.arange(10), per_digit)
    cols = sweep_columns(n_cols, per_digit)
    rows, images = {}, {}
    for k, name in enumerate(set_names):
        noise = grid_noise(10 * n_cols, seed=seed + k, size=unet.config.sample_size)[cols]
        for w in ws:
            if known and (w, name) in known:
                images[(w, name)] = known[(w, name)][cols]
            else:
                images[(w, name)], _ = sample(unet, schedule, name, digits, sampler=sampler,
                                              steps=steps, w=w, seed=seed + k, noise=noise)
            rows.setdefault(w, {})[name] = accuracy(classifier, images[(w, name)], digits)
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

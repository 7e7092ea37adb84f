"""What the P1 notebook shows: the reverse process, the network and results in computed prose,
the guidance sweep, the JupyterLab explorer."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..diffusion import classifier_free_guidance
from ..nets.unet import eps_fn
from ..images import to_uint8
from .model import STORED_BATCH, class_label, grid_noise, null_label, sample


def reverse_frames(trajectory: dict, final: np.ndarray, index: int = 0):
    """The reverse process of sample ``index``: x_t at each recorded step (noisiest first),
    then the sample itself. Returns (uint8 (len(trajectory) + 1, H, W, 3), column labels: the
    first frame, the starting noise, is named $x_T$ at the step the sampler starts from)."""
    ts = sorted(trajectory, reverse=True)
    frames = [to_uint8(trajectory[t][index]) for t in ts] + [final[index]]
    labels = [f"$t$ = {t}" for t in ts]
    labels[0] = f"$x_T$ (first step, $t$ = {ts[0]})"
    return np.stack(frames), labels + ["$x_0$ (in the grid)"]


def predicted_x0_frames(unet, schedule, set_name: str, digit: int, trajectory: dict, *,
                        w: float, index: int = 0) -> np.ndarray:
    """What the model predicts the clean image to be at each recorded x_t of sample ``index``
    (guided, as in sampling): x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t),
    clamped as the sampler clamps it. uint8 (len(trajectory), H, W, 3), noisiest first."""
    from ..device import of
    from ..diffusion import predict_x0
    dev = of(unet)
    eps = classifier_free_guidance(eps_fn(unet, device_type=dev.type,
                                          autocast=dev.type == "cuda"),  # bf16 on a GPU
                                   w, cond_key="y", null_value=null_label(unet, set_name))
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
            "guidance_null": cfg.get("guidance_null", "shared"),
            "snr_gamma": cfg.get("snr_gamma", 0.0),
            "warmup": cfg.get("warmup"), "wall_minutes": man.get("wall_seconds", 0) / 60,
            "weights": man.get("weights", "ema"), "n_train_images": man.get("n_train_images"),
            "attention_sizes": [c.sample_size // 2 ** i for i, b in enumerate(c.down_block_types)
                                if "Attn" in b]}


def sampler_label(sampler: str, steps: int) -> str:
    if sampler == "dpmpp":
        return f"DPM-Solver++(2M), {steps} steps"
    if sampler == "ddpm":
        strided = "" if steps >= 1000 else f", on {steps} of the 1,000 steps: DDIM with η = 1"
        return f"DDPM-{steps} (ancestral{strided})"
    return f"DDIM-{steps}, η = 0"


def _count(n: int, noun: str) -> str:
    words = ("no", "one", "two", "three", "four")
    return f"{words[n] if n < len(words) else n} {noun}{'' if n == 1 else 's'}"


def _labels(guidance_null: str) -> str:
    return ("10 digits × 2 sets, and one null label per set (20 + set)"
            if guidance_null == "per-set" else "10 digits × 2 sets, and the null label (20)")


def _dropout(guidance_null: str) -> str:
    """What guidance dropout does to a label, and so what guidance amplifies."""
    if guidance_null == "per-set":
        return ("a dropped label becomes its set's null label, so the unconditional branch of "
                "guidance still knows the set and guidance amplifies the digit alone")
    return ("a dropped label becomes the one null label, so guidance amplifies the digit and "
            "the set's look together")


def _weighting(d: dict) -> str:
    """How the loss was weighted over t: nothing for the plain loss, Min-SNR-γ otherwise."""
    g = d.get("snr_gamma") or 0.0
    if not g:
        return ""
    return (f", the loss of each sample weighted by Min-SNR-γ (Hang et al. 2023, γ = {g:g}): "
            f"$\\min(\\mathrm{{SNR}}_t, \\gamma) / \\mathrm{{SNR}}_t$ with "
            f"$\\mathrm{{SNR}}_t = \\bar\\alpha_t / (1 - \\bar\\alpha_t)$, which down-weights the "
            f"low-noise steps (those with $\\mathrm{{SNR}}_t > \\gamma$) so that they do not "
            f"dominate the gradient")


def network_text(d: dict) -> str:
    """P1.1's network and training paragraph, from :func:`describe`."""
    sizes = ", ".join(f"{s} × {s}" for s in d["attention_sizes"]) or "no level"
    return (f"**Network.** A diffusers `UNet2DModel` with {d['params'] / 1e6:.2f}M parameters: "
            f"channels {', '.join(map(str, d['channels']))} at 28 × 28, 14 × 14 and 7 × 7, "
            f"{_count(d['layers_per_block'], 'residual block')} per level, self-attention at "
            f"{sizes}; the "
            f"time step enters through a sinusoidal embedding, the class through a learned "
            f"embedding of {d['n_classes']} labels ({_labels(d['guidance_null'])}) added "
            f"to it. Trained for {d['steps']:,} steps at batch {d['batch_size']}{_weighting(d)}, "
            f"AdamW at "
            f"learning rate {d['lr']:g} after {d['warmup']} warm-up steps, guidance dropout "
            f"$p_{{\\text{{uncond}}}} = {d['p_uncond']:g}$ "
            f"({_dropout(d['guidance_null'])}), EMA decay {d['ema_decay']:g} (the "
            f"exported weights: "
            f"{d['weights']}), on {d['n_train_images']:,} images of both sets; its training runs "
            f"took {d['wall_minutes']:.0f} minutes of wall time on a CPU (recorded with the "
            f"checkpoint).")


def distance_to_final(frames: np.ndarray, final: np.ndarray) -> list[float]:
    """Mean absolute difference (0-255) of each uint8 frame from the ``final`` image."""
    return [float(np.abs(f.astype(np.float64) - final).mean()) for f in frames]


def reverse_text(schedule, shown: list[int], settled: dict | None = None,
                 finals: dict | None = None) -> str:
    """What the reverse-process strips show, with the signal and noise level of each frame;
    ``settled``: {set: :func:`distance_to_final` of the predicted x0 frames}, for what the
    bottom rows show; ``finals``: {set: the final uint8 image}, whose contrast says why one
    set's digit shows later in the top row than another's."""
    from .model import reverse_snr_levels
    ab = schedule.alpha_bar
    lv = "; ".join(f"$t = {t}$: {float(ab[t].sqrt()):.2f} and {float((1 - ab[t]).sqrt()):.2f}"
                   for t in shown)
    levels = ", ".join(f"{s:g}" if s >= 1 else f"1/{1 / s:g}"
                       for s in reverse_snr_levels(len(shown) + 1))
    sig, noi = ab.sqrt(), (1 - ab).sqrt()
    mid = next((t for t in shown if sig[t] >= noi[t]), shown[-1])
    late = next((t for t in shown if sig[t] >= 2 * noi[t]), shown[-1])
    return (r"Each strip starts from the grid image's own starting noise $x_T$ (the first "
            f"frame: pure Gaussian noise, which the sampler's strided grid enters at its first "
            f"step, $t = {shown[0]}$) and ends at the image in the grid. The frames "
            r"in between are the sampler's states $x_t$ as it enters step $t$ (distributed like "
            r"the forward process's $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1 - \bar\alpha_t}\,"
            r"\epsilon$, which gives their signal and noise levels), at the steps "
            r"of the sampler's grid where the signal-to-noise ratio "
            r"$\bar\alpha_t / (1 - \bar\alpha_t)$ first reaches "
            f"{levels} (signal and noise coefficients: {lv}). In the top row an outline may show "
            f"a frame earlier; the digit is clear once the signal coefficient passes the noise's ($t = {mid}$: "
            f"{float(sig[mid]):.2f} against {float(noi[mid]):.2f}), is plain once it is at least "
            f"twice the noise's ($t = {late}$: {float(sig[late]):.2f} against {float(noi[late]):.2f}); "
            f"in the last frame before the grid image ($t = {shown[-1]}$) the noise's "
            f"standard deviation is down to {float((1 - ab[shown[-1]]).sqrt()):.2f}. The "
            r"bottom row shows what the model makes of each $x_t$, its prediction "
            r"$\hat x_0 = (x_t - \sqrt{1 - \bar\alpha_t}\,\hat\epsilon) / \sqrt{\bar\alpha_t}$. "
            f"At $t = {shown[0]}$ any error of the predicted noise enters $\\hat x_0$ multiplied "
            rf"by $\sqrt{{1 - \bar\alpha_t}}/\sqrt{{\bar\alpha_t}} = "
            rf"{float((1 - ab[shown[0]]).sqrt() / ab[shown[0]].sqrt()):.0f}$, so the prediction "
            "is saturated noise." + (_settled_text(shown, settled) if settled else "")
            + _contrast_text(finals or {}))


def _contrast_text(finals: dict) -> str:
    """Which set's final image has the lower contrast (std of its grey levels, 0-255), when the
    two differ by more than 1.5 times: the same noise hides that digit until later."""
    c = {k: float(np.asarray(v, np.float64).mean(-1).std()) for k, v in finals.items()}
    if len(c) < 2 or max(c.values()) < 1.5 * min(c.values()):
        return ""
    lo, hi = min(c, key=c.get), max(c, key=c.get)
    return (f" The {lo} strip shows its digit later than the {hi} one: its final image has a "
            f"contrast (standard deviation of the grey levels, 0-255) of {c[lo]:.1f} against "
            f"{c[hi]:.1f}, so the same noise hides it longer.")


def _settled_text(shown: list[int], settled: dict) -> str:
    """How close each predicted x0 already is to the final image, per set."""
    per = "; ".join(f"{name}: " + ", ".join(f"{d:.1f}" for d in ds)
                    for name, ds in settled.items())
    first = {name: ds[1] for name, ds in settled.items() if len(ds) > 1}
    soon = [name for name, d in first.items() if d < 10]
    text = (f" How far each prediction is from the final image (mean absolute difference, "
            f"0-255, at $t$ = {', '.join(map(str, shown))}): {per}.")
    if soon:
        text += (f" So by $t = {shown[1]}$ the prediction for {' and '.join(soon)} is already "
                 f"close to the final image: the later steps change details, not the digit or "
                 f"its colours.")
    return text


def accuracy_text(table, test_accuracy: dict, mode: str, test_sizes: dict | None = None) -> str:
    """The accuracy paragraph, from :func:`score_table` and the CNN's held-out accuracy (on
    ``test_sizes`` images per set, when given: then with its standard error)."""
    from ..modes import set_label
    from ..report.show import pct
    cnn = table[table.classifier == "project CNN"]
    parts = [f"{pct(r.accuracy, r.images)} of the {r['digit set']} samples"
             for _, r in cnn.iterrows()]
    sizes = test_sizes or {}
    held = ", ".join(f"{pct(v, sizes.get(k))} on {set_label(k, mode)}"
                     for k, v in test_accuracy.items())
    missed = bool((cnn.accuracy < 1).any())
    text = (f"The project's digit CNN reads {' and '.join(parts)} as the digit they were drawn "
            f"for" + (" (± one standard error)." if missed else "."))
    if held:
        text += (f" The CNN itself scores {held} on the held-out real test images, so it cannot "
                 f"certify more than that: "
                 + ("some of the samples it misreads may be the CNN's own mistakes." if missed else
                    "a sample it reads as its digit could still be one a person would misread."))
    lenet = table[table.classifier == "course LeNet"]
    if len(lenet):
        r = lenet.iloc[0]
        text += f" The course's MNIST-M classifier reads {pct(r.accuracy, r.images)} of them."
    return text


def sweep_text(table, guidance: float, per_point: int, names: dict) -> str:
    """The guidance paragraph, from :func:`guidance_sweep`'s table (``per_point`` images per
    set and w): a set whose accuracy at the last w is below its best by more than two standard
    errors of the difference falls; one closer than that only dips."""
    from ..report.show import pct, se
    ws = list(table.index)
    bits, falls, dips, stays = [], [], [], []
    for name in table.columns:
        acc, label = table[name], names.get(name, name)
        at_best = [w for w in ws if acc[w] == acc.max()]
        best = " and ".join(f"{w:g}" for w in at_best)
        last = (f", {pct(acc.iloc[-1])} at w = {ws[-1]:g}" if ws[-1] not in at_best else "")
        bits.append(f"{label}: {pct(acc.iloc[0])} at w = {ws[0]:g}, best "
                    f"{pct(acc.max())} at w = {best}{last}")
        gap = float(acc.max() - acc.iloc[-1])
        sd = float(np.hypot(se(acc.max(), per_point), se(acc.iloc[-1], per_point)))
        said = (f"{label} ({100 * gap:.1f} points below its best, SE of the difference "
                f"{100 * sd:.1f})")
        (stays if gap <= 0 else falls if gap > 2 * sd else dips).append(
            label if gap <= 0 else said)
    past = []
    if falls:
        past.append(f"past its best it falls again for {' and '.join(falls)}: at w = {ws[-1]:g} "
                    "the samples over-sharpen into saturated strokes and blotches that the CNN "
                    "misreads")
    if dips:
        past.append(f"at w = {ws[-1]:g} {' and '.join(dips)} "
                    f"{'dips' if len(dips) == 1 else 'dip'} by less than two standard errors")
    if stays and (falls or dips):
        past.append(f"{' and '.join(stays)} {'is' if len(stays) == 1 else 'are'} at its best at "
                    f"w = {ws[-1]:g}")
    return (f"Accuracy of the project CNN against the guidance weight ({per_point} samples per "
            f"point, the same starting noises at every w; {'; '.join(bits)}). Guidance trades "
            f"diversity for fidelity: it pushes each sample away from the unconditional "
            f"prediction and towards features that say \"this digit\", so accuracy rises from "
            f"w = {ws[0]:g}; "
            + ("; ".join(past) if past else f"it stays at its best up to w = {ws[-1]:g}")
            + f". What guidance does to the samples' look is measured in the table below. The "
            f"grids use w = {guidance:g}.")


def sweep_columns(n_cols: int, per_digit: int) -> list[int]:
    """Indices of the first ``per_digit`` columns of each digit's row in a grid of ``n_cols``."""
    return [d * n_cols + c for d in range(10) for c in range(per_digit)]


def guidance_sweep(unet, schedule, set_names, ws, classifier, *, per_digit: int, n_cols: int,
                   sampler: str = "ddim", steps: int = 50, seed: int = 0, known: dict | None = None,
                   progress: bool = False):
    """Project-CNN accuracy for each guidance weight w and set, on the first ``per_digit``
    columns of each set's grid noises (:func:`grid_noise` with ``seed + k`` for the k-th set), so
    every w starts from the same noises and the grid's own w needs no new samples: ``known``
    ``{(w, set): grid images}`` are reused. Returns (DataFrame rows w, columns sets;
    {(w, set): uint8 images, digit-major}); ``progress``: a bar over the (set, w) draws."""
    import pandas as pd
    from tqdm.auto import tqdm

    from ..classifier import accuracy
    digits = np.repeat(np.arange(10), per_digit)
    cols = sweep_columns(n_cols, per_digit)
    rows, images = {}, {}
    bar = tqdm(total=len(set_names) * len(ws), desc="guidance sweep", disable=not progress)
    for k, name in enumerate(set_names):
        noise = grid_noise(10 * n_cols, seed=seed + k, size=unet.config.sample_size)[cols]
        for w in ws:
            if known and (w, name) in known:
                images[(w, name)] = known[(w, name)][cols]
            else:
                images[(w, name)], _ = sample(unet, schedule, name, digits, sampler=sampler,
                                              steps=steps, w=w, seed=seed + k, noise=noise,
                                              batch_size=STORED_BATCH)
            rows.setdefault(w, {})[name] = accuracy(classifier, images[(w, name)], digits)
            bar.update()
    bar.close()
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

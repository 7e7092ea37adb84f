"""The P2 notebook's computed prose: every number formatted from a measurement, and the
direction of every comparison read from the numbers (a claim the figure does not show is not
made)."""
from __future__ import annotations

import numpy as np

from ..diffusion import linear_schedule
from ..report.show import signed, spoken_list
from .ddim import CONVENTIONS, DEFAULT_CONVENTION, N_STEPS, T
from .notebook import (ALPHA, ETA, ETA_DIFF, ETA_DIFF_MAX, ETA_GRAIN, ETA_LAYOUT, PATH_DIFF,
                       FaceSetup, detail_col, norm_col, std_col)

# A face whose colour channels' mean levels differ by at most this much (0-255) has no tint. A
# grey model sampled on the course's grid keeps a few grey levels of colour noise at single
# pixels: the grid ends at alpha_bar_0 < 1, which leaves noise of standard deviation 0.01 in
# every direction (hw2lib.diffusion.grey).
GREY_TINT = 1.0


def model_text(s: FaceSetup, *, convention: str = DEFAULT_CONVENTION) -> str:
    """What the notebook samples from: the course's UNet, or the embedded face model (and, for
    a grey one, how it is sampled in three channels, and what colour the DDIM of
    ``convention`` leaves)."""
    shape = " × ".join(map(str, s.noises.shape[1:]))
    head = f"Model: {s.model_name}; {len(s.names)} noises of shape {shape}."
    f = s.facts
    if not f.get("grey"):
        return head
    trained = (f", trained for {f['steps']:,} steps on {f['train_images']} grey 32 × 32 faces (100 "
               f"LFW faces and their mirror images)" if f.get("steps") else "")
    return (
        f"{head} It is a 1-channel UNet of {f['params'] / 1e6:.2f}M parameters{trained}. Grey "
        f"data $x_0 = g\\,(1, 1, 1)$ lie along $u = (1, 1, 1)/\\sqrt{{3}}$ at every pixel, so the "
        f"part $x_\\perp$ of $x_t$ orthogonal to $u$ is pure noise, "
        f"$\\sqrt{{1 - \\bar\\alpha_t}}\\,\\epsilon_\\perp$, and the optimal 3-channel "
        f"prediction is $\\epsilon(x_t, t) = u\\,e(x_t \\cdot u, t) + "
        f"x_\\perp / \\sqrt{{1 - \\bar\\alpha_t}}$ with $e$ the 1-channel model trained on "
        f"$x_0 \\cdot u = \\sqrt{{3}}\\,g$ (`hw2lib.diffusion.grey_eps`). The course's 3-channel "
        f"noises are sampled through it: every DDIM prediction $\\hat x_0$ is exactly grey."
        + _last_step_colour(convention))


def _last_step_colour(convention: str) -> str:
    """A grid that ends at alpha_bar_0 < 1 returns x_0 with that step's noise in it, in the
    colour directions too (:mod:`hw2lib.diffusion.grey`)."""
    if CONVENTIONS[convention]["set_alpha_to_one"]:
        return ""
    sd = float((1 - linear_schedule(T).alpha_bar[0]).sqrt())
    return (f" The course's grid ends at $\\bar\\alpha_0 < 1$ rather than at $x_0$ itself, so "
            f"the sample it returns keeps that step's noise, of standard deviation "
            f"$\\sqrt{{1 - \\bar\\alpha_0}} = {sd:.2f}$ (of the range [-1, 1]), in every "
            f"direction: single pixels keep a few grey levels of colour.")


def _kept(corr: float, between: float) -> str:
    """How much of the eta = 0 layout a correlation keeps, on the scale from "as unrelated as two
    noises' faces" (0) to "the same" (1)."""
    k = (corr - between) / (1 - between) if between < 1 else float("nan")
    if not np.isfinite(k):
        return "keep an unmeasured part of"
    return ("keep" if k >= 0.7 else "keep part of" if k >= 0.35 else "lose most of" if k >= 0.1
            else "keep none of")


def _one_draw(stats, i: int, k: int, name: str) -> str:
    """Whether noise ``k``'s grainy face at row ``i`` is its noise's or one draw's of the added
    noise, from ``stats.attrs["grain_draws"]`` (empty without them)."""
    if "grain_draws" not in stats.attrs:
        return ""
    g = np.asarray(stats.attrs["grain_draws"])[i]  # (draws, N)
    d, n = g.shape
    return (f" It is that draw of the added noise, not noise {name}: over {d} draws of the added "
            f"noise for each of the {n} noises, the faces at η = {stats[ETA].iloc[i]:g} have grain "
            f"{np.median(g):.1f} in the median and {np.percentile(g, 90):.1f} at the 90th "
            f"percentile, and noise {name}'s {d} range from {g[:, k].min():.1f} to "
            f"{g[:, k].max():.1f}.")


def _grain_trend(stats) -> str:
    """How often a face comes out grainy at each eta > 0, over ``attrs["grain_draws"]``."""
    if "grain_draws" not in stats.attrs:
        return ""
    g, etas = np.asarray(stats.attrs["grain_draws"]), stats[ETA].to_numpy()
    p90 = np.percentile(g.reshape(len(etas), -1), 90, axis=1)
    low = 1 + int(np.argmin(p90[1:]))  # the eta > 0 with the least grain
    if np.all(np.diff(p90[1:]) < 0):
        trend = "thin out as η grows"
    elif low < len(etas) - 1 and np.all(np.abs(p90[low:] - p90[low]) <= 0.05 * p90[low]):
        trend = f"thin out as η grows to {etas[low]:g} and then stay about level"
    else:
        trend = "do not thin out steadily as η grows"
    return (f" Over those draws the grainy faces {trend}: the 90th percentile of the grain is "
            + ", ".join(f"{v:.1f} at η = {e:g}" for e, v in zip(etas[1:], p90[1:]))
            + f" (the η = 0 faces, which add no noise, reach {p90[0]:.1f}). A likely reading: "
            f"at η = 1 every step adds as much noise as DDPM's sampler and the next steps remove it together with what "
            f"earlier steps left; at a small η the added noise is small, and where this small "
            f"model does not take it for noise, the nearly deterministic later steps keep it.")


def eta_observation(stats, *, steps: int = N_STEPS, names=None) -> str:
    """P2.1's observation, from :func:`~hw2lib.p2.eta_stats` of the grid shown; ``names``: the
    noises' names (columns), for a face that stands out."""
    d, etas = stats[ETA_DIFF].to_numpy(), stats[ETA].to_numpy()
    names = list(names) if names is not None else [
        f"{k:02d}" for k in range(len(stats.attrs.get("grain_per_face", [[]])[0]))]
    lay, between = stats[ETA_LAYOUT].to_numpy(), stats.attrs.get("layout_between_noises",
                                                                  float("nan"))
    steady = bool(np.all(np.diff(d[1:]) >= -0.5))
    trend = ("is about the same at every η > 0" if d[-1] < 1.1 * d[1] else
             "grows steadily with η" if steady else "grows with η, though not steadily")
    text = (
        f"**Observation.** In short: η = 0 is deterministic, one face per noise; every η > 0 "
        f"adds fresh noise at each step, so the faces move away from the η = 0 face (by "
        f"{d[1]:.1f} grey levels at η = {etas[1]:g}, {d[-1]:.1f} at η = {etas[-1]:g}) and "
        f"differ from draw to draw; η = 1 is DDPM's ancestral sampler.\n\n"
        f"In detail: the row η = 0 is DDIM's deterministic map from each noise to a face. "
        f"Every η > 0 adds fresh Gaussian noise of standard deviation $\\sigma_t$ at each of the "
        f"{steps} steps (each image's added noise comes from its own seeded generator, the same in "
        f"every row, scaled by $\\sigma_t$), so the faces depart from the η = 0 row: their mean "
        f"absolute difference from it {trend}, from {d[1]:.1f} at η = {etas[1]:g} to {d[-1]:.1f} "
        f"at η = {etas[-1]:g} (0-255 scale; largest single face "
        f"{stats[ETA_DIFF_MAX].max():.1f}).")
    near = stats.attrs.get("diff_from_previous_row", [np.nan])[-1]
    if len(etas) > 2 and near < 0.6 * d[-1]:  # the last two rows share their added noise
        text += (f" The last two rows look alike (η = {etas[-2]:g} and {etas[-1]:g}: {near:.1f} "
                 f"grey levels apart, against {d[-1]:.1f} from η = 0): an image's added noise is "
                 f"the same draw in every row, and once $\\sigma_t$ is large that draw, not "
                 f"$x_T$, decides the face; another draw would give other faces.")
    if np.isfinite(between):
        text += (
            f"\n\nWhat the starting noise fixed (where the face sits, its pose, where it is light or "
            f"dark) is measured by the correlation of the grey levels of 4 × 4-pixel squares, less "
            f"the grid's mean face (what every face shares), with those of the η = 0 face of the "
            f"same noise: {signed(lay[1])} at η = {etas[1]:g} and {signed(lay[-1])} at "
            f"η = {etas[-1]:g}, against {signed(between)} between the η = 0 faces of different "
            f"noises. So at "
            f"η = {etas[1]:g} the faces {_kept(lay[1], between)} the layout of their η = 0 face, "
            f"and at "
            f"η = {etas[-1]:g} they {_kept(lay[-1], between)} it.")
        pairs = stats.attrs.get("layout_between_pairs") or []
        if len(pairs) > 1 and min(pairs) <= lay[-1] and round(lay[-1], 2) < round(between, 2):
            text += (f" ({signed(lay[-1])} is below the {signed(between)} but within the range of "
                     f"the {len(pairs)} pairs of different noises it averages, {signed(min(pairs))} "
                     f"to {signed(max(pairs))}: no less related than unrelated faces are.)")
        gone = [e for e, v in zip(etas[1:-1], lay[1:-1]) if _kept(v, between) == "keep none of"]
        if gone and _kept(lay[-1], between) == "keep none of":
            text += (f" None of it is left from η = {gone[0]:g} on, where the correlation is "
                     f"already as low as between different noises' faces.")
    grain = stats[ETA_GRAIN].to_numpy()
    hi, lo = 1 + int(np.argmax(grain[1:])), 1 + int(np.argmin(grain[1:]))
    if grain[hi] > 1.25 * grain[0] or grain[lo] < 0.8 * grain[0]:
        parts, draw = [], ""
        if grain[hi] > 1.25 * grain[0]:
            part = (f"the faces at η = {etas[hi]:g} are the grainiest of the grid (fine "
                    f"detail and grain {grain[hi]:.1f} against {grain[0]:.1f} at η = 0)")
            per_face = np.asarray(stats.attrs.get("grain_per_face", [[]] * len(etas))[hi])
            if len(per_face) > 2:
                k = int(np.argmax(per_face))
                rest = np.delete(per_face, k)
                if per_face[k] - rest.mean() > 0.5 * (grain[hi] - grain[0]) * len(per_face):
                    part += (f", most of it from one face, noise {names[k]}'s ({per_face[k]:.1f} "
                             f"against {rest.mean():.1f} for the others): a sample whose fresh "
                             f"noise the later steps did not remove")
                    draw = _one_draw(stats, hi, k, names[k])
            parts.append(part)
        if grain[lo] < 0.8 * grain[0]:
            parts.append(f"those at η = {etas[lo]:g} the smoothest ({grain[lo]:.1f})")
        text += "\n\nIn the images, " + ", and ".join(parts) + "." + draw + _grain_trend(stats)
    else:
        text += (f"\n\nFine detail and grain stay near the η = 0 level ({grain[1:].min():.1f} to "
                 f"{grain[1:].max():.1f} against {grain[0]:.1f}).")
    tint = stats.attrs.get("tint_max")
    if tint is not None and tint <= GREY_TINT:
        text += (f"\n\nNo face has a colour tint at any η: the mean levels of a face's three colour "
                 f"channels differ by {tint:.2f} of 255 at most, so the added noise changes grey "
                 f"levels, not colour (within single pixels the three channels differ by "
                 f"{stats.attrs['channels_mean']:.1f} grey levels on average and "
                 f"{stats.attrs['channels_max']} at most: the last step's noise).")
    return text + (
        f" At η = 1 the sampler is DDPM's ancestral sampler on the {steps}-step grid, where the "
        f"noise added along the way rewrites what η = 0 derives from $x_T$ alone. The one-to-one "
        f"map from $x_T$ to an image at η = 0 is what lets DDIM interpolate between noises (P2.2).")


def _ranges(values) -> str:
    """α values as runs: [0.1, 0.2, 0.3, 0.7] -> "0.1–0.3 and 0.7" (a run: consecutive grid
    points, the grid's step taken from the smallest gap)."""
    v = sorted(float(x) for x in values)
    step = min(np.diff(v)) if len(v) > 1 else 1.0
    runs, start = [], 0
    for k in range(1, len(v) + 1):
        if k == len(v) or v[k] - v[k - 1] > 1.5 * step:
            runs.append(f"{v[start]:.1f}" if k - 1 == start else f"{v[start]:.1f}–{v[k - 1]:.1f}")
            start = k
    return spoken_list(runs)


def _against_slerp(ratio: np.ndarray, alphas: np.ndarray, what: str) -> tuple[str, int]:
    """Where the lerp faces' ``what`` (lerp / slerp = ``ratio`` per α) is below, level with
    (within 5%) and above the slerp faces'; and the sign of the majority (-1 below, 0, 1)."""
    below, above = ratio < 0.95, ratio > 1.05
    level = ~below & ~above
    parts = []
    if below.any():
        k = int(np.argmin(ratio))
        parts.append(f"below the slerp faces' at α = {_ranges(alphas[below])} (down to "
                     f"{ratio[k]:.0%} of it, at α = {alphas[k]:.1f})")
    if level.any():
        parts.append(f"within 5% of it at α = {_ranges(alphas[level])}")
    if above.any():
        k = int(np.argmax(ratio))
        parts.append(f"above it at α = {_ranges(alphas[above])} (up to {ratio[k]:.0%})")
    majority = max((below.sum(), -1), (level.sum(), 0), (above.sum(), 1))[1]
    return f"{what} is {spoken_list(parts)}", majority


def interpolation_observation(table) -> str:
    """P2.2's observation, from :func:`~hw2lib.p2.interpolation_rows`' table: where, along
    α, the lerp faces have less (or more) contrast and fine detail than the slerp faces."""
    alphas = table[ALPHA].to_numpy()
    mid = int(np.argmin(np.abs(alphas - 0.5)))
    a = alphas[mid]
    inner = (alphas > 0) & (alphas < 1)
    if not inner.any():
        inner = np.ones_like(alphas, dtype=bool)
    n_l, n_s = table[norm_col("lerp")].iloc[mid], table[norm_col("slerp")].iloc[mid]
    c_l, c_s = table[std_col("lerp")].to_numpy(), table[std_col("slerp")].to_numpy()
    t_l, t_s = table[detail_col("lerp")].to_numpy(), table[detail_col("slerp")].to_numpy()
    contrast, c_sign = _against_slerp(c_l[inner] / c_s[inner], alphas[inner],
                                      "the lerp faces' contrast (pixel standard deviation)")
    detail, t_sign = _against_slerp(t_l[inner] / t_s[inner], alphas[inner],
                                    "Their fine detail (mean absolute Laplacian)")
    found = [w for w, sign in (("smoother", t_sign), ("lower in contrast", c_sign)) if sign < 0]
    missed = [w for w, sign in (("smoother", t_sign), ("lower in contrast", c_sign)) if sign >= 0]
    verdict = ("So over most of the path the lerp faces are " + " and ".join(found)
               + ", as expected" + (f", but not {missed[0]}" if missed else "") + "."
               if found else "So, unlike the expectation, over most of the path the lerp faces "
               "are neither smoother nor lower in contrast.")
    c_ratio = c_l[inner] / c_s[inner]
    k = int(np.argmin(c_ratio))
    norm_l = table[norm_col("lerp")].to_numpy()[inner]
    if c_ratio[k] < 0.95 and abs(alphas[inner][k] - a) > 0.15:
        verdict += (f" The contrast gap is widest at α = {alphas[inner][k]:.1f}, not at "
                    f"α = {a:.1f} where lerp's noise is shortest ({norm_l.min():.2f}): a shorter "
                    f"noise lowers contrast, but where it ends up also depends on which face the "
                    f"noise leads to, and the two rows already show different faces in between "
                    f"(the slerp row's own contrast runs from {c_s[0]:.3f} to {c_s[-1]:.3f} "
                    f"between its two ends).")
    return (
        f"**Observation.** Two independent Gaussian noises of dimension d are nearly orthogonal "
        f"with norms near $\\sqrt{{d}}$, so their linear mix at α = {a:.1f} has a norm of only "
        f"{n_l:.2f} of $\\lVert z_0 \\rVert$ ($\\sqrt{{0.5}} = 0.71$ for exactly orthogonal "
        f"noises of equal norm), while slerp keeps it at {n_s:.2f}. The model only saw $x_T$ of "
        f"norm near $\\sqrt{{d}}$ at $t = T$; DDIM reads a shorter one as if part of its noise "
        f"were already removed, leaving an image part near 0 (mid-grey), so a smoother face with "
        f"less contrast is expected in the middle of the lerp row. Measured on the faces above, "
        f"{contrast}. {detail}. At α = {a:.1f}: contrast {c_l[mid]:.3f} against {c_s[mid]:.3f}, "
        f"fine detail {t_l[mid]:.1f} against {t_s[mid]:.1f}. {verdict} The two rows differ by "
        f"{table[PATH_DIFF].iloc[mid]:.1f} grey levels per pixel on average at α = {a:.1f} "
        f"(0-255). The rows keep the model's own range, without the course's per-image min-max "
        f"normalisation, which would stretch the contrast back and hide a difference. Slerp moves "
        f"along the sphere where Gaussian noise lives, so every intermediate noise is a "
        f"plausible $x_T$; the faces it leads to can still mix the two ends' features on the "
        f"way, since nothing makes the map from noise to face smooth.")


def mse_in_grey_levels(mse: float) -> str:
    """An MSE on the 0-255 scale in words: below 1, as the share of pixel values one grey level
    off (each such value adds exactly 1 to the sum of squares); from 1 up, its root."""
    if not mse > 0:
        return "Every pixel value equals the ground truth's."
    if mse < 1:
        return (f"That is what one pixel value in {1 / mse:,.0f} being one grey level off, and "
                f"every other equal, would give.")
    return f"Its root, {mse ** 0.5:.1f} grey levels, is a typical pixel value's difference."


def mse_text(table, gt_source: str, mode: str, convention: str = DEFAULT_CONVENTION) -> str:
    """What the MSE table means, in either mode; ``convention``: the first column's (the
    section's figures')."""
    conv = list(table.columns)
    mean_a, mean_b = table.loc["mean", conv[0]], table.loc["mean", conv[1]]
    what = ("an independent implementation of the same sampler (diffusers' DDIMScheduler, "
            "configured as the course specifies) on the same embedded model and noises, so "
            "this table is a cross-check of our DDIM, not a score: a value near 0 says it "
            "computes what diffusers computes, to the rounding of 8-bit images. It is not the "
            "course's ground truth, which needs the course's UNet"
            if mode == "embedded" else
            "the course's ground-truth images face/GT, which the course's grader compares with "
            "the η = 0 outputs")
    return (f"Mean MSE {mean_a:.3g} with the $\\bar\\alpha$ convention of the first column, "
            f"{mean_b:.3g} with the other (0-255 scale). The first column's convention "
            f"(convention = {convention}) is the one every figure of this section uses, as their "
            f"captions say" + (", and the one `hw2_2.sh` writes its images with. "
                               if convention == DEFAULT_CONVENTION else
                               f"; `hw2_2.sh` writes with convention = {DEFAULT_CONVENTION}. ")
            + f"{mse_in_grey_levels(mean_a)} "
            f"The ground truth here is {what}. "
            f"The two conventions differ in which $\\bar\\alpha$ goes with a grid step "
            f"$t = 981, \\dots, 1$ ($\\bar\\alpha_t$ or $\\bar\\alpha_{{t-1}}$) and where the last "
            f"step lands ($\\bar\\alpha_0$ or 1); public solutions use both.")


def copies_text(near: dict, etas) -> str:
    """Whether the faces are copies of training faces (:func:`~.notebook.nearest_training`)."""
    f, t = np.asarray(near["faces"]), np.asarray(near["train"])
    lo = float(np.percentile(t, 10))
    close = int((f < lo).sum())
    line = f"half that ({lo / 2:.1f}), our line for a near copy"
    per = ", ".join(f"{f[i].min():.1f}-{f[i].max():.1f} at η = {e:g}" for i, e in enumerate(etas))
    return (f"**Copies of training faces?** Each face's distance to its nearest training face "
            f"(root-mean-square grey levels, 0-255, both min-max normalised): {per}; between the "
            f"{len(t)} training images themselves (a face's mirror image not counted as another "
            f"face) the nearest other face is {np.median(t):.1f} "
            f"away in the median and {lo:.1f} at the 10th percentile. {close} of the {f.size} "
            f"faces are nearer to a training face than 90% of training faces are to each other, "
            + (f"and none is within {line}: the faces that replace the η = 0 face at large η are "
               "new faces, not recalled training images." if f.min() > lo / 2 else
               f"and the nearest is {f.min():.1f} away, within {line}: that one is close to a copy."))

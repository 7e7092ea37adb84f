"""Problem 3b for the notebook: a text-to-image model with two learned concepts, their
generations against the initialisation words, and naive against region-masked composition.

The math lives in the package's modules (textual inversion, sampling, region masks, scores);
this module draws the samples and tabulates what the report shows. Everything but
:func:`load_models` works on any :class:`~hw2lib.personalize.t2i.TextToImage` model.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from . import compose
from .concepts import concept_scores, load_concepts, region_scores
from .t2i import TextToImage, encode_prompts

INIT_PROMPT = {"<new1>": "a four", "<new2>": "a digit"}  # the concepts' initialisation words


def load_models(mode: str, *, t2i_ckpt, ti_ckpt, clip_ckpt, device="cpu", data_dir="",
                ti_out="", clip_weights=""):
    """(the text-to-image model with its learned tokens, on ``device``; the CLIP that scores
    its images; reference cells per token). Only the embedded scene model runs inside the
    report: in course mode this raises :class:`~hw2lib.errors.MissingInput` (the section is
    skipped) naming the commands that generate and score with Stable Diffusion instead."""
    from ..device import resolve
    from ..zeroshot import load_digit_clip
    from .scene_model import load_scene_model
    if mode != "embedded":
        _course_notice(data_dir, ti_out, clip_weights)
    dev = resolve(device)  # before loading: DEVICE=cuda without a GPU fails at once
    model = load_scene_model(t2i_ckpt, clip_ckpt=clip_ckpt)
    refs = load_concepts(model, ti_ckpt)
    return model.to(dev), load_digit_clip(clip_ckpt), refs


def _course_notice(data_dir, ti_out, clip_weights) -> None:
    from ..errors import MissingInput
    data = Path(data_dir) / "textual_inversion" if data_dir else Path("hw2_data/textual_inversion")
    raise MissingInput(
        "P3.2's figures and findings are drawn by the embedded scene model; Stable Diffusion "
        "does not run inside the report. Generate with `bash hw2_3.sh "
        f"{data / 'input.json'} {ti_out or 'OUT'} sd-v1-4/` and score with `python -m hw2lib ti "
        f"score --json {data / 'input.json'} --out {ti_out or 'OUT'} --refs {data} "
        f"--clip-weights {clip_weights or 'ViT-B-32.pt'}`.")


def setup_text(t2i_ckpt, ti_ckpt) -> str:
    """How the embedded stand-in of P3.2 is built and how its tokens were trained, from the
    checkpoints' manifests."""
    t2i = json.loads((Path(t2i_ckpt) / "manifest.json").read_text())
    ti = json.loads((Path(ti_ckpt) / "manifest.json").read_text())
    tc, cs = ti["train_config"], ti["concepts"]
    desc = {"object": "one particular handwritten-on-photo 4, in views shifted by a pixel and "
                      "with changed brightness (the analogue of the course's dog)",
            "style": "different house-number digits recoloured yellow on navy blue, a colour "
                     "scheme whatever the digit (the analogue of a painting style)"}
    concepts = "\n".join(f"* `{c['token']}` ({c['kind']}, initialised from \"{c['init_word']}\", "
                         f"{c['num_vectors']} vectors, {c['n_images'] // 2} images, each placed in the left and "
                         f"in the right cell of a scene): "
                         f"{desc.get(c['kind'], '')}." for c in cs)
    loss = ("each sample's eps loss divided by the unconditional prediction's on the same $x_t$ "
            "(the relative loss: every $t$ counts by how much the caption helps there, not by the "
            "size of its loss, which at small t is mostly an unpredictable noise floor)"
            if ti.get("relative") else "the plain eps loss")
    return (f"**The embedded stand-in.** Stable Diffusion does not fit a CPU report, so the "
            f"scene model is a pixel-space diffusers `UNet2DConditionModel` "
            f"({t2i['unet_params'] / 1e6:.2f}M parameters, {t2i['steps_done']:,} training steps) "
            f"on 16x32 scenes of one or two digits, conditioned on the token states of the "
            f"embedded CLIP's frozen text tower. Its captions say where things are (\"a 3 on "
            f"the left\", \"a seven next to a 2\") and often what they look like (\"a "
            f"handwritten teal 4 on red\"). Two concepts it never saw:\n\n{concepts}\n\n"
            f"Each concept image is placed in the left or right cell of a blank scene and "
            f"captioned as the scene model's one-digit scenes are; {tc['steps']:,} Adam steps at "
            f"learning rate {tc['lr']:g} with batches of {tc['batch_size']}, t over "
            f"[{ti.get('t_min', 0)}, 1000), with {loss}.")


def band_text(absolute, relative, token: str) -> str:
    """What the loss-by-band tables say, read from them."""
    uncond = '"" (unconditional)'
    learned = relative.loc[f"a {token}"]
    helps = [c for c in relative.columns if learned[c] < 1]
    low, high = absolute.loc[uncond].iloc[0], absolute.loc[uncond].iloc[-1]
    return (f"The plain eps loss is {low / high:.0f} times larger in the lowest band of t than in "
            f"the highest, and there no caption does much better than none: a plain loss over all "
            f"t is dominated by a term the token cannot change. Relative to the unconditional "
            f"prediction, the learned `{token}` helps in {len(helps)} of {len(relative.columns)} "
            f"bands (ratio below 1), most in {learned.idxmin()} ({learned.min():.3f}).")


def noises(model: TextToImage, n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, *model.latent_shape, generator=torch.Generator().manual_seed(seed))


def draw(model: TextToImage, prompts, *, n: int, seed: int, w: float, steps: int) -> dict:
    """``{prompt: uint8 (n, H, W, 3)}``; every prompt starts from the same n noises."""
    z = noises(model, n, seed)
    return {p: compose.generate(model, [p] * n, noise=z, w=w, steps=steps) for p in prompts}


def concept_table(clip, images: dict, refs: dict):
    """Image score (100 x cosine with the concept's mean reference embedding) of each prompt's
    generations, for the learned token and for its initialisation word; on the learned token's
    row, the mean paired difference to the init word (same noises) and its standard error."""
    import pandas as pd
    rows = []
    for token, ref in refs.items():
        s = {label: concept_scores(clip, images[prompt], ref)
             for label, prompt in (("learned token", f"a {token}"), ("init word", INIT_PROMPT[token]))}
        d = s["learned token"] - s["init word"]
        for label, prompt in (("learned token", f"a {token}"), ("init word", INIT_PROMPT[token])):
            rows.append({"concept": token, "prompt": prompt, "which": label,
                         "image score": float(s[label].mean()), "std": float(s[label].std()),
                         "minus init word": float(d.mean()) if label == "learned token" else np.nan,
                         "SE": float(d.std(ddof=1) / np.sqrt(len(d))) if label == "learned token"
                         else np.nan})
    return pd.DataFrame(rows)


def compose_two(model: TextToImage, clip, refs, *, n: int, seed: int, w: float, steps: int):
    """Naive prompt vs region-masked composition, same noises. Returns (images per method,
    table of per-region scores and the both-present rate)."""
    import pandas as pd
    t1, t2 = list(refs)
    z = noises(model, n, seed)
    images = {
        f'naive: "a {t1} next to a {t2}"': compose.generate(
            model, [f"a {t1} next to a {t2}"] * n, noise=z, w=w, steps=steps),
        "region-masked": compose.generate_regions(
            model, f"a {t1} on the left", f"a {t2} on the right", noise=z, w=w, steps=steps),
    }
    rows = []
    for method, imgs in images.items():
        s = region_scores(clip, imgs, refs)
        rows.append({"method": method, f"left vs {t1}": float(s[f"left_vs_{t1}"].mean()),
                     f"right vs {t2}": float(s[f"right_vs_{t2}"].mean()),
                     "both present": float(s["both_present"].mean())})
    return images, pd.DataFrame(rows)


@torch.no_grad()
def loss_by_band(model: TextToImage, images: torch.Tensor, prompts, *, bands=((0, 100), (100, 300), (300, 500),
                 (500, 700), (700, 1000)), n_batches: int = 3, batch_size: int = 64, seed: int = 0):
    """Mean eps MSE of each prompt on noisy versions of ``images`` (float (N, 3, H, W) in
    [-1, 1]) per band of t, every prompt on the same (image, t, noise) draws; the last column
    pair of the table is each band's loss divided by the empty prompt's, which is what the
    relative textual-inversion loss sees. Returns (absolute, relative) DataFrames."""
    import pandas as pd

    from ..diffusion import q_sample
    prompts = list(dict.fromkeys([*prompts, ""]))
    ctx = {p: encode_prompts(model, [p]) for p in prompts}
    schedule, g = model.schedule, torch.Generator().manual_seed(seed)
    loss = {p: {} for p in prompts}
    for lo, hi in bands:
        sums = dict.fromkeys(prompts, 0.0)
        for _ in range(n_batches):
            i = torch.randint(0, len(images), (batch_size,), generator=g)
            t = torch.randint(lo, hi, (batch_size,), generator=g)
            noise = torch.randn((batch_size, *images.shape[1:]), generator=g)
            x_t = q_sample(schedule, images[i], t, noise)
            for p in prompts:
                pred = model.eps(x_t, t, ctx[p].expand(batch_size, -1, -1))
                sums[p] += float(torch.nn.functional.mse_loss(pred.float(), noise)) / n_batches
        for p in prompts:
            loss[p][f"t in [{lo}, {hi})"] = sums[p]
    absolute = pd.DataFrame(loss).T.rename(index={"": '"" (unconditional)'})
    return absolute, absolute / absolute.loc['"" (unconditional)']


def loss_curves(*ckpt_dirs) -> dict:
    """``{title: (steps, losses, what the loss is)}`` from each checkpoint's ``loss.json`` and
    ``manifest.json`` (a textual-inversion run names its tokens; a relative loss is labelled)."""
    out = {}
    for d in ckpt_dirs:
        h = json.loads((Path(d) / "loss.json").read_text())
        man = Path(d) / "manifest.json"
        m = json.loads(man.read_text()) if man.exists() else {}
        tokens = [c["token"] for c in m.get("concepts", [])]
        title = (f"textual inversion of {', '.join(tokens)}" if tokens
                 else "scene model (text-to-image) training")
        out[title] = (np.asarray(h["step"]), np.asarray(h["loss"]),
                      "eps MSE / unconditional eps MSE" if m.get("relative") else "eps MSE")
    return out


def findings(scores, comp, n: int) -> str:
    """The findings of P3.2 as Markdown, every number read from :func:`concept_table` and
    :func:`compose_two`'s tables (``n`` images per prompt)."""
    def concept(token):
        r = scores[(scores.concept == token) & (scores.which == "learned token")].iloc[0]
        i = scores[(scores.concept == token) & (scores.which == "init word")].iloc[0]
        d, e = r["minus init word"], r["SE"]
        verdict = ("clearly above" if d > 2 * e else "clearly below" if d < -2 * e
                   else "within two standard errors of")
        return (f"`{token}` scores {r['image score']:.1f} against its references where "
                f"\"{i['prompt']}\" scores {i['image score']:.1f}: a paired difference of "
                f"{d:+.1f} (SE {e:.1f}, n = {n}), {verdict} its initialisation word")
    t1, t2 = scores.concept.unique()[:2]
    naive, masked = comp.iloc[0], comp.iloc[1]
    cols = list(comp.columns)
    left, right = cols[1], cols[2]
    k_naive, k_masked = round(naive["both present"] * n), round(masked["both present"] * n)
    better = "raises" if k_masked > k_naive else "does not raise" if k_masked == k_naive else "lowers"
    p1, p2 = k_naive / n, k_masked / n
    se_diff = float(np.sqrt(p1 * (1 - p1) / n + p2 * (1 - p2) / n))
    sure = ("more than two standard errors" if abs(p2 - p1) > 2 * se_diff else
            "within two standard errors, so more images per method would be needed to be sure")
    return "\n".join([
        "**Findings.**",
        "",
        f"* **Each concept alone.** {concept(t1)}. {concept(t2)}. The score measures closeness "
        "to the references in the embedded CLIP's image space, which is not the same as "
        "reproducing them: compare each row of the figure with the reference images above.",
        f"* **Both concepts in one prompt.** The naive prompt puts each concept where the "
        f"prompt says in {k_naive} of {n} images (`{t1}` left and `{t2}` right, judged by which "
        f"reference set each cell is nearer to in CLIP space); its right cells score "
        f"{naive[right]:.1f} against `{t2}` and its left cells {naive[left]:.1f} against `{t1}`. "
        "The likely cause: each token was fitted alone, on images where it was the only "
        "subject, and nothing in training ties a token to one place; in a prompt with two "
        "learned tokens both act on the whole image through the same cross-attention, so one "
        "concept can take over both places or the relation \"next to\" can be lost.",
        f"* **Region-masked composition** {better} this to {k_masked} of {n} (a difference of "
        f"{100 * (p2 - p1):+.0f} points, SE {100 * se_diff:.0f}: {sure}); right cells "
        f"{masked[right]:.1f} against `{t2}`, left cells {masked[left]:.1f} against `{t1}`. "
        "Each prompt's guided noise prediction acts only on its own half, so the concepts "
        "cannot bleed into each other, at the price of needing the layout in advance.",
    ])


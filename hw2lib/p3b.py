"""Problem 3b for the notebook: the embedded scene model with its two learned concepts, their
generations against the initialisation words, and naive against region-masked composition.

The math lives in :mod:`hw2lib.personalize` (textual inversion, sampling, region masks,
scores); this module draws the samples and tabulates what the report shows.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .personalize import embedded as E

INIT_PROMPT = {"<new1>": "a four", "<new2>": "a digit"}  # the concepts' initialisation words


def load(t2i_ckpt, ti_ckpt, clip_ckpt):
    """(components with the learned tokens, embedded CLIP, reference cells per token)."""
    from .clip import embedded as clip_embedded
    comps = E.load(t2i_ckpt, clip_ckpt=clip_ckpt)
    refs = E.load_concepts(comps, ti_ckpt)
    return comps, clip_embedded.load(clip_ckpt), refs


def noises(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, E.CELL, 2 * E.CELL, generator=torch.Generator().manual_seed(seed))


def draw(comps, prompts, *, n: int, seed: int, w: float, steps: int) -> dict:
    """``{prompt: uint8 (n, CELL, 2 CELL, 3)}``; every prompt starts from the same n noises."""
    z = noises(n, seed)
    return {p: E.generate(comps, [p] * n, noise=z, w=w, steps=steps) for p in prompts}


def concept_table(clip, images: dict, refs: dict):
    """Image score (100 x cosine with the concept's mean reference embedding) of each prompt's
    generations, for the learned token and for its initialisation word; on the learned token's
    row, the mean paired difference to the init word (same noises) and its standard error."""
    import pandas as pd
    rows = []
    for token, ref in refs.items():
        s = {label: E.concept_scores(clip, images[prompt], ref)
             for label, prompt in (("learned token", f"a {token}"), ("init word", INIT_PROMPT[token]))}
        d = s["learned token"] - s["init word"]
        for label, prompt in (("learned token", f"a {token}"), ("init word", INIT_PROMPT[token])):
            rows.append({"concept": token, "prompt": prompt, "which": label,
                         "image score": float(s[label].mean()), "std": float(s[label].std()),
                         "minus init word": float(d.mean()) if label == "learned token" else np.nan,
                         "SE": float(d.std(ddof=1) / np.sqrt(len(d))) if label == "learned token"
                         else np.nan})
    return pd.DataFrame(rows)


def compose(comps, clip, refs, *, n: int, seed: int, w: float, steps: int):
    """Naive prompt vs region-masked composition, same noises. Returns (images per method,
    table of per-region scores and the both-present rate)."""
    import pandas as pd
    t1, t2 = list(refs)
    z = noises(n, seed)
    images = {
        f'naive: "a {t1} next to a {t2}"': E.generate(comps, [f"a {t1} next to a {t2}"] * n,
                                                     noise=z, w=w, steps=steps),
        "region-masked": E.generate_regions(comps, f"a {t1} on the left", f"a {t2} on the right",
                                            noise=z, w=w, steps=steps),
    }
    rows = []
    for method, imgs in images.items():
        s = E.region_scores(clip, imgs, refs)
        rows.append({"method": method, f"left vs {t1}": float(s[f"left_vs_{t1}"].mean()),
                     f"right vs {t2}": float(s[f"right_vs_{t2}"].mean()),
                     "both present": float(s["both_present"].mean())})
    return images, pd.DataFrame(rows)


@torch.no_grad()
def loss_by_band(comps, images: torch.Tensor, prompts, *, bands=((0, 100), (100, 300), (300, 500),
                 (500, 700), (700, 1000)), n_batches: int = 3, batch_size: int = 64, seed: int = 0):
    """Mean eps MSE of each prompt on noisy versions of ``images`` (float (N, 3, H, W) in
    [-1, 1]) per band of t, every prompt on the same (image, t, noise) draws; the last column
    pair of the table is each band's loss divided by the empty prompt's, which is what the
    relative textual-inversion loss sees. Returns (absolute, relative) DataFrames."""
    import pandas as pd

    from .diffusion import linear_schedule, q_sample
    from .personalize.textual_inversion import text_embeddings
    unet, te, tok = (comps[k] for k in ("unet", "text_encoder", "tokenizer"))
    prompts = list(dict.fromkeys([*prompts, ""]))
    ctx = {p: text_embeddings(tok, te, [p]) for p in prompts}
    schedule, g = linear_schedule(), torch.Generator().manual_seed(seed)
    loss = {p: {} for p in prompts}
    for lo, hi in bands:
        sums = dict.fromkeys(prompts, 0.0)
        for _ in range(n_batches):
            i = torch.randint(0, len(images), (batch_size,), generator=g)
            t = torch.randint(lo, hi, (batch_size,), generator=g)
            noise = torch.randn((batch_size, *images.shape[1:]), generator=g)
            x_t = q_sample(schedule, images[i], t, noise)
            for p in prompts:
                pred = unet(x_t, t, encoder_hidden_states=ctx[p].expand(batch_size, -1, -1)).sample
                sums[p] += float(torch.nn.functional.mse_loss(pred.float(), noise)) / n_batches
        for p in prompts:
            loss[p][f"t in [{lo}, {hi})"] = sums[p]
    absolute = pd.DataFrame(loss).T.rename(index={"": '"" (unconditional)'})
    return absolute, absolute / absolute.loc['"" (unconditional)']


def loss_curves(*ckpt_dirs) -> dict:
    """``{folder name: (steps, losses, what the loss is)}`` from each checkpoint's ``loss.json``
    (and ``manifest.json``: a relative textual-inversion loss is labelled as such)."""
    out = {}
    for d in ckpt_dirs:
        h = json.loads((Path(d) / "loss.json").read_text())
        man = Path(d) / "manifest.json"
        relative = man.exists() and json.loads(man.read_text()).get("relative", False)
        out[Path(d).name] = (np.asarray(h["step"]), np.asarray(h["loss"]),
                             "eps MSE / unconditional eps MSE" if relative else "eps MSE")
    return out


def cells_to_uint8(cells: torch.Tensor) -> np.ndarray:
    from .viz import to_uint8
    return to_uint8(cells)

"""The two setups of P3.2's section, one interface (:class:`Setup`): what the notebook draws
from, judges with, and says about how its model and tokens came to be.

* :func:`embedded`: the project's scene model with the tokens of ``train ti`` and the embedded
  digit CLIP as the judge (everything committed under ``checkpoints/``).
* :func:`course`: Stable Diffusion v1.4 with the tokens of ``ti train`` (the ``--out`` folder)
  and CLIP ViT-B/32 as the judge, on the course's reference images; when ``ti_out`` (the
  output of ``hw2_3.sh``) is given, the course's own scores of it too.

Every input is checked before anything loads; a missing one is a
:class:`~hw2lib.errors.MissingInput` naming it and the command that makes it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .judge import CellJudge, ClipJudge, Judge
from .t2i import TextToImage


@dataclass
class Setup:
    model: TextToImage  # the frozen text-to-image model, learned tokens loaded
    judge: Judge  # scores images against the concepts' references
    init_prompts: dict  # token -> the prompt of its initialisation word ("a four", "a dog")
    alone_prompts: list  # the one-concept prompts drawn: each token and its init word
    band_images: torch.Tensor  # training latents of the first concept (the loss by band)
    band_prompts: list  # the prompts of the loss-by-band table (the empty one is added)
    text: str  # Markdown: the model, the concepts and how the tokens were trained
    curves: dict  # {title: (steps, losses, label)} of the training runs
    band_batch: int  # noisy latents per batch in the loss-by-band table
    band_batches: int  # batches per band there (the scene model: 2 of 64; SD: 3 of 8)
    batch_size: int | None  # generations per batch (None: all at once)
    references_are: str  # what the reference images are, for the figure's caption
    cell_inches: float  # the size of one generated image in the figures
    course_scores: list = field(default_factory=list)  # PromptScores of hw2_3.sh's output
    # the style concept whose colours the notebook counts (None: no such check, course mode)
    style_token: str | None = None
    model_manifest: dict = field(default_factory=dict)  # the text-to-image model's manifest

    @property
    def tokens(self) -> list[str]:
        return self.judge.tokens


def load(mode: str, *, device: str = "cpu", t2i_ckpt="", ti_ckpt="", clip_ckpt="", data_dir="",
         sd="", sd_config="", clip_weights="", ti_out="", cache_dir=None) -> Setup:
    """The setup of ``mode`` ("embedded" or "course"), on ``device``; ``cache_dir``: where the
    embedded data are cached (read for an older scene model's colour census)."""
    from ..device import resolve
    dev = str(resolve(device))  # before loading: DEVICE=cuda without a GPU fails at once
    if mode == "embedded":
        return embedded(t2i_ckpt, ti_ckpt, clip_ckpt, device=dev, cache_dir=cache_dir)
    return course(data_dir, sd=sd, sd_config=sd_config, ti_ckpt=ti_ckpt,
                  clip_weights=clip_weights, ti_out=ti_out, device=dev)


def _manifest(folder) -> dict:
    p = Path(folder) / "manifest.json"
    return json.loads(p.read_text()) if p.exists() else {}


def init_prompts(ti_ckpt, tokens) -> dict:
    """``{token: "a <init word>"}`` from the textual-inversion run's manifest."""
    words = {c["token"]: c["init_word"] for c in _manifest(ti_ckpt).get("concepts", [])}
    return {t: f"a {words.get(t, 'thing')}" for t in tokens}


def loss_curves(*ckpt_dirs) -> dict:
    """``{title: (steps, losses, what the loss is)}`` from each checkpoint's ``loss.json`` and
    ``manifest.json`` (a textual-inversion run names its tokens; a relative loss is labelled;
    each title ends with its checkpoint folder's name)."""
    out = {}
    for d in ckpt_dirs:
        h = json.loads((Path(d) / "loss.json").read_text())
        m = _manifest(d)
        tokens = [c["token"] for c in m.get("concepts", [])]
        title = (f"textual inversion of {', '.join(tokens)}" if tokens
                 else "scene model (text-to-image) training") + f" ({Path(d).name})"
        out[title] = (np.asarray(h["step"]), np.asarray(h["loss"]),
                      "ε MSE / unconditional ε MSE" if m.get("relative") else "ε MSE")
    return out


# ----------------------------------------------------------------------------------- embedded
def embedded(t2i_ckpt, ti_ckpt, clip_ckpt, *, device: str = "cpu", cache_dir=None) -> Setup:
    from ..zeroshot import load_digit_clip
    from .concepts import load_concepts
    from .scene_model import load_scene_model
    from .scenes import canvases
    model = load_scene_model(t2i_ckpt, clip_ckpt=clip_ckpt)
    refs = load_concepts(model, ti_ckpt)
    judge = CellJudge(load_digit_clip(clip_ckpt), refs)
    t1, t2 = judge.tokens[:2]
    inits = init_prompts(ti_ckpt, judge.tokens)
    # and a side word for each: the scene model's captions say where a digit stands
    alone = [f"a {t1}", inits[t1], f"a {t1} on the right", f"a {t2}", inits[t2], f"a {t2} on the left"]
    return Setup(model.to(device), judge, inits, alone,
                 band_images=canvases(refs[t1]),
                 band_prompts=[f"a {t1}", "a four", "a handwritten teal four on red", "a two"],
                 text=embedded_text(t2i_ckpt, ti_ckpt), curves=loss_curves(t2i_ckpt, ti_ckpt),
                 band_batch=64, band_batches=2, batch_size=None,
                 references_are="held-out digits the scene model never saw in training",
                 cell_inches=1.15, style_token=_style_token(ti_ckpt),
                 model_manifest=_with_census(_manifest(t2i_ckpt), cache_dir=cache_dir))


def _with_census(manifest: dict, *, cache_dir=None) -> dict:
    """A scene model's manifest with its training cells' colour census: an older manifest has
    none, so it is counted here from the embedded data when the manifest's data fingerprints
    are those of the data built now (a model trained without recoloured copies only)."""
    if manifest.get("colour_census") or manifest.get("recolour") or \
            "data_fingerprints" not in manifest:
        return manifest
    from ..data import load_digit_sets
    from .scene_model import colour_census, training_cells
    sets = load_digit_sets("embedded", cache_dir=cache_dir)
    if {n: d.fingerprint for n, d in sets.items()} != manifest["data_fingerprints"]:
        return manifest
    attrs = training_cells(sets)[2]
    return {**manifest, "recolour": 0.0,
            "colour_census": {"data": colour_census(attrs), "recoloured": {}}}


def scene_model_if_any(t2i_ckpt, clip_ckpt, *, device: str = "cpu"):
    """The scene model of ``t2i_ckpt`` without learned tokens (e.g. the base model a committed
    one was fine-tuned from), or None when the folder is not given or has no model."""
    from .scene_model import load_scene_model
    if not t2i_ckpt or not (Path(t2i_ckpt) / "model.safetensors").exists():
        return None
    return load_scene_model(t2i_ckpt, clip_ckpt=clip_ckpt).to(device)


def _style_token(ti_ckpt) -> str | None:
    """The first style-like concept of the textual-inversion run (its manifest says the kind)."""
    return next((c["token"] for c in _manifest(ti_ckpt).get("concepts", [])
                 if c.get("kind") == "style"), None)


def embedded_text(t2i_ckpt, ti_ckpt) -> str:
    """How the embedded stand-in of P3.2 is built and how its tokens were trained, from the
    checkpoints' manifests."""
    t2i, ti = _manifest(t2i_ckpt), _manifest(ti_ckpt)
    cs = ti["concepts"]
    desc = {"object": "one particular handwritten-on-photo 4, in views shifted by a pixel and "
                      "with changed brightness (the analogue of the course's dog)",
            "style": "different house-number digits recoloured yellow on navy blue, a colour "
                     "scheme whatever the digit (the analogue of a painting style)"}
    concepts = "\n".join(f"* `{c['token']}` ({c['kind']}, initialised from \"{c['init_word']}\", "
                         f"{c['num_vectors']} vectors, {c['n_images'] // 2} images, each placed in the left and "
                         f"in the right cell of a scene): "
                         f"{desc.get(c['kind'], '')}." for c in cs)
    return (f"**The embedded stand-in.** Stable Diffusion does not fit a CPU report, so the "
            f"scene model is a pixel-space diffusers `UNet2DConditionModel` "
            f"({t2i['unet_params'] / 1e6:.2f}M parameters, {t2i['steps_done']:,} training steps) "
            f"on 16 × 32 scenes of one or two digits, conditioned on the token states of the "
            f"embedded CLIP's frozen text tower. Its captions say where things are (\"a 3 on "
            f"the left\", \"a seven next to a 2\") and often what they look like (\"a "
            f"handwritten teal 4 on red\"){_recolour_text(t2i)}. Two concepts it never "
            f"saw:\n\n{concepts}\n\n"
            f"Each concept image is placed in the left or right cell of a blank scene and "
            f"captioned as the scene model's one-digit scenes are; {_ti_text(ti)}")


def _recolour_text(t2i: dict) -> str:
    """The scene model's recolour augmentation, if it had one (its manifest says)."""
    share = t2i.get("recolour") or 0
    return (f"; {share:.0%} of its training cells are added again recoloured in random pairs "
            f"of ink and paper colours, the captions naming them (recolour augmentation: why, "
            f"below)" if share else "")


def _ti_text(ti: dict) -> str:
    tc = ti["train_config"]
    loss = ("each sample's $\\epsilon$ loss divided by the unconditional prediction's on the same $x_t$ "
            "(the relative loss: every $t$ counts by how much the caption helps there, not by the "
            "size of its loss, which at small $t$ is mostly an unpredictable noise floor)"
            if ti.get("relative") else "the plain $\\epsilon$ loss")
    steps = ti.get("steps_done", tc["steps"])
    return (f"{steps:,} Adam step{'s' if steps != 1 else ''} at learning rate {tc['lr']:g} with "
            f"batches of {tc['batch_size']}, t over [{ti.get('t_min', 0)}, 1000), with {loss}.")


# ------------------------------------------------------------------------------------- course
def _need(path, what: str, how: str) -> Path:
    from ..errors import MissingInput
    if not path or not Path(path).exists():
        raise MissingInput(f"P3.2 in course mode needs {what}: {path or '(not given)'} not "
                           f"found. {how}")
    return Path(path)


def course(data_dir, *, sd, ti_ckpt, clip_weights, sd_config="", ti_out="",
           device: str = "cpu") -> Setup:
    """Stable Diffusion with the learned tokens, judged by CLIP ViT-B/32 against the course's
    reference images (``<data>/textual_inversion/<k>/``)."""
    from PIL import Image

    from ..data.course import read_concepts
    from ..errors import MissingInput
    from ..zeroshot import load_clip
    from .sd import load_sd
    from .textual_inversion import load_embeddings
    base = Path(data_dir) / "textual_inversion"
    _need(base / "input.json", "the course's textual-inversion data", "Pass DATA=/path/to/hw2_data.")
    _need(sd, "Stable Diffusion v1.4", "Pass SD=/path/to/sd-v1-4.ckpt (or a diffusers folder).")
    embeds = _need(Path(ti_ckpt) / "learned_embeds" if ti_ckpt else "", "the learned tokens",
                   "Run `python -m hw2lib ti train --out DIR ...` and pass TI_CKPT=DIR.")
    _need(clip_weights, "CLIP ViT-B/32's weights", "Pass CLIP_WEIGHTS=/path/to/ViT-B-32.pt.")
    if ti_out:
        _need(ti_out, "the output folder of hw2_3.sh", "Run hw2_3.sh or leave TI_OUT empty.")
    concepts = read_concepts(base / "input.json", base)
    model = load_sd(sd, config_dir=sd_config or None, device=device, progress=False)
    width = model.text_encoder.get_input_embeddings().weight.shape[1]
    from safetensors import safe_open
    for f in sorted(embeds.glob("*.safetensors")):
        with safe_open(str(f), "pt") as h:
            dim = h.get_slice(next(iter(h.keys()))).get_shape()[-1]
        if dim != width:
            raise MissingInput(f"{f} holds a {dim}-wide embedding; Stable Diffusion's text encoder "
                               f"is {width} wide: these tokens were learned for another model. "
                               "Pass TI_CKPT=<the --out folder of `python -m hw2lib ti train`>.")
    load_embeddings(model, embeds)
    clip = load_clip("ViT-B-32", clip_weights, quick_gelu=True, device=device)
    judge = ClipJudge(clip, {c.token_name: c.image_paths for c in concepts}, device=device)
    t1, t2 = judge.tokens[:2]
    inits = init_prompts(ti_ckpt, judge.tokens)
    imgs = [np.asarray(Image.open(p).convert("RGB")) for p in concepts[0].image_paths]
    scores = []
    if ti_out:
        from .score import score_outputs
        scores = score_outputs(clip, concepts, ti_out)
    ti = _manifest(ti_ckpt)
    text = (f"**Stable Diffusion v1.4** (`{Path(sd).name}`: a VAE to 64x64x4 latents, an "
            f"860M-parameter UNet, CLIP ViT-L/14's text encoder) with the tokens of "
            f"`{Path(ti_ckpt).name}`:\n\n"
            + "\n".join(f"* `{c.token_name}` (initialised from \"{inits[c.token_name][2:]}\", "
                        f"{len(c.image_paths)} reference images of {c.src_image})"
                        for c in concepts)
            + ("\n\n" + _ti_text(ti) if ti else ""))
    return Setup(model, judge, inits, [f"a {t1}", inits[t1], f"a {t2}", inits[t2]],
                 band_images=model.to_latents(imgs).mean,
                 band_prompts=[f"a {t1}", inits[t1]], text=text,
                 curves=loss_curves(ti_ckpt) if (Path(ti_ckpt) / "loss.json").exists() else {},
                 band_batch=8, band_batches=3, batch_size=8, course_scores=scores,
                 references_are=" and ".join(f"{len(c.image_paths)} images of {c.src_image}"
                                             for c in concepts) + " from the course's data",
                 cell_inches=1.2)

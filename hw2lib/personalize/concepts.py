"""The two new concepts of the embedded path (held-out digits the scene model never saw), their
textual inversion on the frozen scene model, and the scores that say whether a generated cell
shows them (cosines in the embedded CLIP's image space)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..images import to_uint8
from .scenes import canvases, scenes_to_cells, to_cells


def _shifts(cell: torch.Tensor, n: int, rng) -> torch.Tensor:
    """``n`` views of one cell: shifted by up to 1 px and brightness-jittered by up to 8%."""
    out = []
    for k in range(n):
        dy, dx = (0, 0) if k == 0 else (int(rng.integers(-1, 2)), int(rng.integers(-1, 2)))
        v = torch.roll(cell, (dy, dx), (-2, -1))
        out.append(((v + 1) * float(rng.uniform(0.92, 1.08)) - 1).clamp(-1, 1))
    return torch.stack(out)


def _restyle(cells: torch.Tensor, ink=(0.98, 0.85, 0.10), paper=(0.10, 0.12, 0.45)) -> torch.Tensor:
    """Recolour cells to a fixed two-colour style: the digit (the minority tone) in ``ink``, the
    rest in ``paper`` (RGB in [0, 1])."""
    lum = cells.mean(1, keepdim=True)
    lo = lum.amin((-2, -1), keepdim=True)
    hi = lum.amax((-2, -1), keepdim=True)
    a = (lum - lo) / (hi - lo + 1e-6)
    flip = (a.mean((-2, -1), keepdim=True) > 0.5).float()  # digit darker than its plate
    a = flip * (1 - a) + (1 - flip) * a
    ink_t = torch.tensor(ink).view(1, 3, 1, 1) * 2 - 1
    paper_t = torch.tensor(paper).view(1, 3, 1, 1) * 2 - 1
    return a * ink_t + (1 - a) * paper_t


def new_concepts(sets: dict, *, n_images: int = 6, seed: int = 0) -> dict:
    """The two concepts, from held-out test images (never in the scene model's training data):

    * ``<new1>`` (object-like, init word "four"): one particular handwritten-on-photo 4, seen
      ``n_images`` times with 1-px shifts and brightness changes (like photos of one dog).
    * ``<new2>`` (style-like, init word "digit"): ``n_images`` different house-number digits
      recoloured yellow on navy blue (a colour scheme, whatever the digit: like a painting style).

    Returns ``{token: dict(init_word, kind, cells (N, 3, CELL, CELL) in [-1, 1])}``.
    """
    rng = np.random.default_rng(seed)
    m = sets["mnistm"]
    four = m.x_test[np.flatnonzero(m.y_test == 4)[0]]
    s = sets["svhn"]
    pick = [int(np.flatnonzero(s.y_test == d)[0]) for d in (0, 2, 3, 5, 7, 9, 1, 6)[:n_images]]
    return {"<new1>": dict(init_word="four", kind="object",
                           cells=_shifts(to_cells(four[None])[0], n_images, rng)),
            "<new2>": dict(init_word="digit", kind="style",
                           cells=_restyle(to_cells(s.x_test[pick])))}


def concept_specs(concepts: dict, num_vectors: int = 1):
    """:class:`ConceptSpec` per concept: the cells placed left and right in blank scenes, each
    captioned as the scene model's one-digit scenes are ("a {}" or "a {} on the left" for a
    concept in the left cell), so the token need not encode where the concept stands."""
    from .textual_inversion import ConceptSpec
    specs = []
    for token, c in concepts.items():
        n = len(c["cells"])
        side = [("a {}", "a {} on the left")] * n + [("a {}", "a {} on the right")] * n
        specs.append(ConceptSpec(token, c["init_word"], canvases(c["cells"]), c["kind"],
                                 image_prompts=tuple(side), num_vectors=num_vectors))
    return specs


def train_concepts(t2i_ckpt, sets: dict, out_dir, cfg, *, command: str = "",
                   progress: bool = True, snr_gamma: float | None = None,
                   target_w: float = 0.0, t_min: int = 0, num_vectors: int = 1,
                   relative: bool = False) -> Path:
    """Textual inversion of :func:`new_concepts` on the frozen scene model (both tokens in one
    run, each batch mixing them). Writes ``learned_embeds/``, ``references.safetensors`` (the
    concepts' reference cells), ``loss.json`` and ``manifest.json`` to ``out_dir``."""
    from safetensors.torch import save_file

    from .scene_model import load_scene_model
    from .textual_inversion import train
    concepts = new_concepts(sets)
    out = train(load_scene_model(t2i_ckpt), concept_specs(concepts, num_vectors), cfg, out_dir,
                progress=progress, command=command, snr_gamma=snr_gamma, target_w=target_w,
                t_min=t_min, relative=relative)
    save_file({t: c["cells"].contiguous() for t, c in concepts.items()},
              str(Path(out) / "references.safetensors"))
    return out


def load_concepts(model, ti_dir) -> dict:
    """Load the learned tokens of ``ti_dir`` into the text-to-image ``model``; returns
    ``{token: reference cells}``."""
    from safetensors.torch import load_file

    from .textual_inversion import load_embeddings
    ti_dir = Path(ti_dir)
    refs = ti_dir / "references.safetensors"
    if not refs.exists():
        raise FileNotFoundError(f"{refs} not found: learn the concepts first "
                                "(python -m hw2lib train ti)")
    load_embeddings(model, ti_dir / "learned_embeds")
    return load_file(str(refs))


# --------------------------------------------------------------------------- scores
@torch.no_grad()
def cell_embeddings(clip, cells: torch.Tensor) -> torch.Tensor:
    """Normalised embedded-CLIP image embeddings of cells (float (N, 3, CELL, CELL) in [-1, 1])."""
    from ..zeroshot.digit_clip import to_clip_tensor
    x = F.interpolate(cells, size=(28, 28), mode="bilinear", align_corners=False)
    u8 = to_uint8(x)
    pcfg = clip.model.visual.preprocess_cfg
    feats = clip.model.encode_image(to_clip_tensor(u8, pcfg["mean"], pcfg["std"]))
    return F.normalize(feats.float(), dim=-1)


def region_scores(clip, scenes_u8: np.ndarray, refs: dict) -> dict:
    """Per image: 100 x cosine of the left and right cells with each concept's mean reference
    embedding, and whether both concepts are where the prompt put them (the left cell nearer
    to ``<new1>``'s references than to ``<new2>``'s and the right cell the other way round)."""
    names = list(refs)
    centre = torch.stack([F.normalize(cell_embeddings(clip, refs[n]).mean(0), dim=0) for n in names])
    left, right = scenes_to_cells(scenes_u8)
    sl = 100 * cell_embeddings(clip, left) @ centre.T  # (N, 2)
    sr = 100 * cell_embeddings(clip, right) @ centre.T
    both = (sl[:, 0] > sl[:, 1]) & (sr[:, 1] > sr[:, 0])
    return {"left_vs_" + names[0]: sl[:, 0].numpy(), "right_vs_" + names[1]: sr[:, 1].numpy(),
            "both_present": both.numpy()}


def concept_scores(clip, images_u8: np.ndarray, ref_cells: torch.Tensor) -> np.ndarray:
    """Image score of whole generations of a one-concept prompt: 100 x cosine between the
    cell that holds the digit (the cell farther from a flat blank) and the mean reference."""
    centre = F.normalize(cell_embeddings(clip, ref_cells).mean(0), dim=0)
    left, right = scenes_to_cells(images_u8)
    busy = lambda c: c.std((-3, -2, -1))  # noqa: E731  (a blank cell is flat)
    cells = torch.where((busy(left) >= busy(right))[:, None, None, None], left, right)
    return (100 * cell_embeddings(clip, cells) @ centre).numpy()

"""The two new concepts of the embedded path (held-out digits the scene model never saw) and
their textual inversion on the frozen scene model (the scores that say whether a generated cell
shows them: :class:`hw2lib.personalize.judge.CellJudge`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .scenes import canvases, to_cells, two_tone


def _shifts(cell: torch.Tensor, n: int, rng) -> torch.Tensor:
    """``n`` views of one cell: shifted by up to 1 px and brightness-jittered by up to 8%."""
    out = []
    for k in range(n):
        dy, dx = (0, 0) if k == 0 else (int(rng.integers(-1, 2)), int(rng.integers(-1, 2)))
        v = torch.roll(cell, (dy, dx), (-2, -1))
        out.append(((v + 1) * float(rng.uniform(0.92, 1.08)) - 1).clamp(-1, 1))
    return torch.stack(out)


def _restyle(cells: torch.Tensor, ink=(0.98, 0.85, 0.10), paper=(0.10, 0.12, 0.45)) -> torch.Tensor:
    """Recolour cells to ``<new2>``'s style: the digit in yellow ink on navy paper."""
    return two_tone(cells, ink, paper)


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

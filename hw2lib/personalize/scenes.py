"""The scenes of the embedded text-to-image model: 16x32 pictures of one or two digit cells
("a 3 next to a 7": 3 left, 7 right; an empty cell is flat), their captions, and the cells'
attributes the captions may name (domain, ink and paper colours)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..images import to_model_range
from ..zeroshot.digit_clip import colour_word
from ..zeroshot.templates import DIGIT_WORDS

CELL = 16  # a digit cell is CELL x CELL; a scene is two cells side by side
SIZE = (CELL, 2 * CELL)


def to_cells(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28, 3) -> float (N, 3, CELL, CELL) in [-1, 1] (antialiased resize)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1
    return F.interpolate(x, size=(CELL, CELL), mode="bilinear", antialias=True, align_corners=False)


def blank_like(cells: torch.Tensor) -> torch.Tensor:
    """A cell without a digit: the mean colour of each cell's border, flat."""
    border = torch.cat([cells[..., 0, :], cells[..., -1, :], cells[..., :, 0], cells[..., :, -1]], -1)
    return border.mean(-1)[..., None, None].expand_as(cells).clone()


def two_tone(cells: torch.Tensor, ink, paper) -> torch.Tensor:
    """Recolour cells to two colours: the digit (the minority tone of the cell's luminance) in
    ``ink``, the rest in ``paper``, blended by the luminance in between (antialiased edges).
    ``ink``, ``paper``: RGB in [0, 1], one colour (3,) for all cells or one per cell (N, 3)."""
    lum = cells.mean(1, keepdim=True)
    lo = lum.amin((-2, -1), keepdim=True)
    hi = lum.amax((-2, -1), keepdim=True)
    a = (lum - lo) / (hi - lo + 1e-6)
    flip = (a.mean((-2, -1), keepdim=True) > 0.5).float()  # digit darker than its plate
    a = flip * (1 - a) + (1 - flip) * a
    ink_t = torch.as_tensor(ink, dtype=cells.dtype).reshape(-1, 3, 1, 1) * 2 - 1
    paper_t = torch.as_tensor(paper, dtype=cells.dtype).reshape(-1, 3, 1, 1) * 2 - 1
    return a * ink_t + (1 - a) * paper_t


def colour_pairs(n: int, g: torch.Generator, min_contrast: float = 0.25):
    """``n`` random (ink, paper) pairs, RGB (n, 3) in [0, 1] each: hue uniform, saturation in
    [0.4, 1], value in [0.35, 1], redrawn until ink and paper differ in luminance by at least
    ``min_contrast`` (so the digit stays visible)."""
    import colorsys

    def draw(k):
        h, s, v = torch.rand(3, k, generator=g)
        hsv = zip(h.tolist(), (0.4 + 0.6 * s).tolist(), (0.35 + 0.65 * v).tolist())
        return torch.tensor([colorsys.hsv_to_rgb(*c) for c in hsv]).reshape(k, 3)

    lum = torch.tensor([0.299, 0.587, 0.114])
    ink, paper = draw(n), draw(n)
    for _ in range(100):
        bad = ((ink - paper) @ lum).abs() < min_contrast
        if not bad.any():
            break
        ink[bad], paper[bad] = draw(int(bad.sum())), draw(int(bad.sum()))
    return ink, paper


def recoloured(cells: torch.Tensor, domains, frac: float, g: torch.Generator):
    """Recolour augmentation: copies of a random ``frac`` of ``cells`` in random two-colour
    schemes (:func:`two_tone`, :func:`colour_pairs`), so that a caption's ink and paper words
    reach colours the data rarely has (yellow on navy: 3 of the 14,000 embedded training
    cells). Returns (copies, their indices into ``cells``, their attributes as
    :func:`cell_attributes` gives them, the colours named from the drawn ink and paper)."""
    idx = torch.randperm(len(cells), generator=g)[:round(frac * len(cells))]
    ink, paper = colour_pairs(len(idx), g)
    attrs = [dict(domain=DOMAIN_WORD.get(domains[i], domains[i]), ink=colour_word(*k.tolist()),
                  paper=colour_word(*p.tolist()))
             for i, k, p in zip(idx.tolist(), ink, paper)]
    return two_tone(cells[idx], ink, paper), idx, attrs


DOMAIN_WORD = {"mnistm": "handwritten", "svhn": "printed"}


def cell_attributes(cells: torch.Tensor, domains, iters: int = 8) -> list[dict]:
    """What a caption may say of each cell besides the digit: its domain word and the colours of
    ink and paper, named as the embedded CLIP's captions name colours. Ink and paper are the two
    clusters of a 2-means of the cell's pixel colours, started from the border's mean colour
    (paper) and the pixel farthest from it (ink)."""
    px = ((cells.float() + 1) / 2).flatten(2).transpose(1, 2)  # (N, H*W, 3) in [0, 1]
    paper = ((blank_like(cells.float()) + 1) / 2)[..., 0, 0]  # (N, 3)
    far = (px - paper[:, None]).norm(dim=-1).argmax(1)
    ink = px[torch.arange(len(px)), far]
    for _ in range(iters):
        is_ink = (px - ink[:, None]).norm(dim=-1) < (px - paper[:, None]).norm(dim=-1)
        w = is_ink[..., None].float()
        ink = (px * w).sum(1) / w.sum(1).clamp(min=1)
        paper = (px * (1 - w)).sum(1) / (1 - w).sum(1).clamp(min=1)
    return [dict(domain=DOMAIN_WORD.get(dm, dm), ink=colour_word(*i.tolist()),
                 paper=colour_word(*p.tolist()))
            for dm, i, p in zip(domains, ink, paper)]


def word(d: int, rng, attr: dict | None = None) -> str:
    """The digit as a word or a numeral with its article ("an eight", "a 3"); with ``attr``
    (:func:`cell_attributes`) sometimes its domain, ink and paper colours as well
    ("a handwritten yellow 3 on red")."""
    parts = [DIGIT_WORDS[d] if rng.random() < 0.5 else str(d)]
    if attr is not None:
        if rng.random() < 0.5:
            parts.insert(0, attr["ink"])
        if rng.random() < 0.3:
            parts.insert(0, attr["domain"])
        if rng.random() < 0.5:
            parts.append("on " + attr["paper"])
    return ("an " if parts[0] in ("eight", "8", "orange") else "a ") + " ".join(parts)


def scene_caption(left, right, rng, attrs=(None, None)) -> str:
    """Caption of a scene; ``None`` marks an empty cell. Left-to-right order is meaningful.
    ``attrs``: the cells' :func:`cell_attributes` (or ``None``: digits only)."""
    if left is not None and right is not None:
        a, b = word(left, rng, attrs[0]), word(right, rng, attrs[1])
        forms = (f"{a} next to {b}", f"{a} and {b}", f"{b} to the right of {a}")
        return str(forms[rng.integers(len(forms))])
    d, side, attr = (left, "left", attrs[0]) if left is not None else (right, "right", attrs[1])
    return word(d, rng, attr) + ("" if rng.random() < 0.5 else f" on the {side}")


def draw_scenes(cells: torch.Tensor, labels: np.ndarray, n: int, g: torch.Generator,
                p_single: float = 0.35, attrs: list | None = None):
    """``n`` random scenes (float (n, 3, CELL, 2 CELL)) and their captions; ``attrs`` (one
    :func:`cell_attributes` entry per cell) lets captions describe the cells."""
    rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=g)))
    idx = torch.randint(0, len(cells), (n, 2), generator=g).numpy()
    at = (lambda k: None) if attrs is None else attrs.__getitem__  # noqa: E731
    out, caps = [], []
    for i, j in idx:
        a, b = cells[i], cells[j]
        if rng.random() < p_single:
            if rng.random() < 0.5:
                out.append(torch.cat([a, blank_like(a)], -1))
                caps.append(scene_caption(int(labels[i]), None, rng, (at(i), None)))
            else:
                out.append(torch.cat([blank_like(a), a], -1))
                caps.append(scene_caption(None, int(labels[i]), rng, (None, at(i))))
        else:
            out.append(torch.cat([a, b], -1))
            caps.append(scene_caption(int(labels[i]), int(labels[j]), rng, (at(i), at(j))))
    return torch.stack(out), caps


def canvases(cells: torch.Tensor) -> torch.Tensor:
    """Scenes holding each cell once in the left and once in the right half, the other half
    blank (float (2N, 3, CELL, 2 CELL)): the textual-inversion images of a one-cell concept."""
    return torch.cat([torch.cat([cells, blank_like(cells)], -1),
                      torch.cat([blank_like(cells), cells], -1)])


def scenes_to_cells(scenes_u8: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 scenes (N, CELL, 2 CELL, 3) -> (left cells, right cells), float in [-1, 1]."""
    x = to_model_range(scenes_u8)
    return x[..., :CELL], x[..., CELL:]

"""Whether generated images show the learned concepts: 100 x the cosine, in a CLIP image space,
between an image (or the left or right part of it) and the mean embedding of a concept's
reference images (its centre).

Two judges, one interface (:class:`Judge`):

* :class:`CellJudge`, the embedded path: the embedded digit CLIP on the scene model's cells (a
  scene is two cells side by side; a one-concept scene's subject is its busier cell).
* :class:`ClipJudge`, the course path: CLIP ViT-B/32 (the course's scorer) on Stable
  Diffusion's images, whole or cut into a left and a right half.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..images import to_uint8


class Judge:
    """Subclasses say how images are embedded (:meth:`embed`, normalised features), which part
    of a one-concept image is its subject (:meth:`subject`) and how an image splits into its
    left and right parts (:meth:`halves`). ``refs``: ``{token: reference images}`` in the form
    :meth:`embed` takes."""
    space = "CLIP's image space"  # words for the page
    part, parts = "half", "halves"
    occupied_rule = "every half counts as occupied"  # words for the page: :meth:`occupied`

    def __init__(self, refs: dict):
        self.tokens = list(refs)
        self.centres = torch.stack([F.normalize(self.embed(r).mean(0), dim=0) for r in refs.values()])

    def embed(self, images) -> torch.Tensor:
        raise NotImplementedError

    def subject(self, images_u8: np.ndarray):
        return images_u8

    def halves(self, images_u8: np.ndarray):
        w = images_u8.shape[2] // 2
        return images_u8[:, :, :w], images_u8[:, :, w:]

    def scores(self, images) -> np.ndarray:
        """(N, tokens): 100 x cosine of each image (as :meth:`embed` takes it) with each centre."""
        return (100 * self.embed(images) @ self.centres.T).numpy()

    def subject_scores(self, images_u8: np.ndarray, token: str) -> np.ndarray:
        """(N,): the score of each one-concept image's subject against ``token``'s centre."""
        return self.scores(self.subject(images_u8))[:, self.tokens.index(token)]

    def occupied(self, parts) -> np.ndarray:
        """(N,) whether each part holds something at all (default: always; see CellJudge)."""
        return np.ones(len(parts), dtype=bool)

    def region_scores(self, images_u8: np.ndarray) -> dict:
        """Per image: the left part's score against the first token, the right part's against the
        second, and whether both concepts are where the prompt put them (each part occupied
        (:meth:`occupied`), the left part nearer to the first token's centre than to the
        second's, the right part the other way round); where both parts are occupied, whether
        both are nearer to the same token (``both_<token>``) or the two are swapped."""
        t1, t2 = self.tokens[:2]
        halves = self.halves(images_u8)
        left, right = (self.scores(h) for h in halves)
        occ_l, occ_r = self.occupied(halves[0]), self.occupied(halves[1])
        occ = occ_l & occ_r
        l1, r1 = left[:, 0] > left[:, 1], right[:, 0] > right[:, 1]  # each part nearer to t1
        both = l1 & ~r1 & occ
        return {f"left_vs_{t1}": left[:, 0], f"right_vs_{t2}": right[:, 1], "both_present": both,
                "both_occupied": occ, "left_occupied": occ_l, "right_occupied": occ_r,
                # both parts occupied and nearer to one concept, or the two the wrong way round
                f"both_{t1}": l1 & r1 & occ, f"both_{t2}": ~l1 & ~r1 & occ,
                "swapped": ~l1 & r1 & occ}


OCCUPIED = 0.4  # a cell spreading less than this share of the references' spread is blank


class CellJudge(Judge):
    """The embedded digit CLIP (:func:`hw2lib.zeroshot.load_digit_clip`) on cells (float (N, 3,
    CELL, CELL) in [-1, 1], resized to its 28 px); ``refs``: reference cells per token."""
    space = "the embedded CLIP's image space"
    part, parts = "cell", "cells"
    occupied_rule = (f"a cell is occupied when its pixels spread at least {OCCUPIED:.0%} as much "
                     f"as the reference cells' median (a blank cell is flat)")

    def __init__(self, clip, refs: dict):
        self.clip = clip
        self.references = {t: to_uint8(r) for t, r in refs.items()}
        self.reference_spread = float(torch.cat([r.float().std((-3, -2, -1))
                                                 for r in refs.values()]).median())
        super().__init__(refs)

    @torch.no_grad()
    def embed(self, cells: torch.Tensor) -> torch.Tensor:
        from ..zeroshot.digit_clip import to_clip_tensor
        x = F.interpolate(cells, size=(28, 28), mode="bilinear", align_corners=False)
        pcfg = self.clip.model.visual.preprocess_cfg
        feats = self.clip.model.encode_image(to_clip_tensor(to_uint8(x), pcfg["mean"], pcfg["std"]))
        return F.normalize(feats.float(), dim=-1)

    def halves(self, images_u8):
        from .scenes import scenes_to_cells
        return scenes_to_cells(images_u8)

    def occupied(self, cells) -> np.ndarray:
        """A cell holds a digit when its pixels spread at least :data:`OCCUPIED` of the
        reference cells' median spread (a blank cell is flat)."""
        spread = cells.float().std((-3, -2, -1))
        return (spread >= OCCUPIED * self.reference_spread).numpy()

    def subject_on_left(self, images_u8) -> torch.Tensor:
        """(N,) whether the digit is in the left cell: the cell farther from a flat blank."""
        left, right = self.halves(images_u8)
        return left.float().std((-3, -2, -1)) >= right.float().std((-3, -2, -1))

    def subject(self, images_u8):
        """The cell that holds the digit (:meth:`subject_on_left`)."""
        left, right = self.halves(images_u8)
        return torch.where(self.subject_on_left(images_u8)[:, None, None, None], left, right)


class ClipJudge(Judge):
    """An open_clip model (:class:`hw2lib.zeroshot.ClipModel`, ViT-B/32 in the course) on uint8
    images (N, H, W, 3) or image paths, with its own preprocessing (resize, centre crop);
    ``refs``: reference image paths per token."""
    space = "CLIP ViT-B/32's image space"

    def __init__(self, clip, refs: dict, *, device: str = "cpu", thumb: int = 128):
        self.clip, self.device = clip, device
        self.references = {t: _thumbnails(paths, thumb) for t, paths in refs.items()}
        super().__init__(refs)

    def embed(self, images) -> torch.Tensor:
        from ..zeroshot import encode_images
        images = list(images)
        return encode_images(self.clip, images, batch_size=32, progress=False, device=self.device)


def _thumbnails(paths, size: int) -> np.ndarray:
    """uint8 (N, size, size, 3): each image centre-cropped to a square and resized."""
    from PIL import Image, ImageOps
    return np.stack([np.asarray(ImageOps.fit(Image.open(p).convert("RGB"), (size, size)))
                     for p in paths])

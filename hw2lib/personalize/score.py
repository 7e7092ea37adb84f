"""The course's textual-inversion scoring with CLIP ViT-B/32.

For each concept k and prompt j, 25 generated images in ``<out>/<k>/<j>/`` get an image score
(100 x the mean cosine between the image and the concept's reference images) and a text score
(100 x the cosine with ``prompt_4_clip_eval[j]``); the top 5 by image + 2.5 x text are kept and
the prompt passes when their mean image and text scores both reach ``baseline[j]``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.course import IMAGE_EXT
from ..zeroshot import ClipModel, encode_images

TOP_K = 5
TEXT_WEIGHT = 2.5


@dataclass(frozen=True)
class PromptScore:
    concept: str
    prompt_idx: int
    prompt: str
    n_images: int
    image_score: float  # mean over the top 5
    text_score: float
    baseline: tuple[float, float]

    @property
    def passed(self) -> bool:
        return self.image_score >= self.baseline[0] and self.text_score >= self.baseline[1]


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXT)


@torch.inference_mode()
def encode_texts(clip: ClipModel, texts) -> torch.Tensor:
    dev = next(clip.model.parameters()).device
    return clip.model.encode_text(clip.tokenizer(list(texts)).to(dev), normalize=True).float().cpu()


def image_text_scores(gen: torch.Tensor, refs: torch.Tensor, text: torch.Tensor):
    """(image scores, text scores) of normalised generated-image features ``gen`` (N, D):
    100 x mean cosine with the reference features (M, D), and 100 x cosine with text (D,)."""
    return 100 * (gen @ refs.T).mean(1), 100 * gen @ text


def top_k(image_scores: torch.Tensor, text_scores: torch.Tensor, k: int = TOP_K):
    """Indices of the k images with the largest image + 2.5 x text score."""
    return torch.argsort(image_scores + TEXT_WEIGHT * text_scores, descending=True)[:k]


def score_outputs(clip: ClipModel, concepts, out_dir, *, progress: bool = False) -> list[PromptScore]:
    """Score every prompt of every concept (``hw2lib.data.course.Concept``s, their reference
    images included) from the generated folders under ``out_dir``."""
    out_dir = Path(out_dir)
    dev = str(next(clip.model.parameters()).device)
    rows = []
    for c in concepts:
        refs = encode_images(clip, c.image_paths, progress=progress, device=dev)
        texts = encode_texts(clip, c.prompts_4_clip_eval)
        for j, prompt in enumerate(c.prompts):
            folder = out_dir / c.key / str(j)
            if not folder.is_dir() or not _images(folder):
                raise FileNotFoundError(f"{folder}: no generated images (expected 25 PNGs)")
            gen = encode_images(clip, _images(folder), progress=progress, device=dev)
            img_s, txt_s = image_text_scores(gen, refs, texts[j])
            top = top_k(img_s, txt_s)
            rows.append(PromptScore(c.key, j, prompt, len(gen), float(img_s[top].mean()),
                                    float(txt_s[top].mean()), tuple(c.baseline[j])))
    return rows


def format_scores(rows: list[PromptScore]) -> str:
    lines = [f"{'concept':8s} {'prompt':>6s} {'image':>7s} {'text':>7s} {'baseline':>10s}  pass"]
    for r in rows:
        lines.append(f"{r.concept:8s} {r.prompt_idx:6d} {r.image_score:7.2f} {r.text_score:7.2f} "
                     f"{r.baseline[0]:>4g}/{r.baseline[1]:<5g}  {'yes' if r.passed else 'no'}")
    n = sum(r.passed for r in rows)
    lines.append(f"passed {n} of {len(rows)} prompts")
    return "\n".join(lines)

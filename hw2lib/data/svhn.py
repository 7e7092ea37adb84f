"""SVHN-like house-number crops rendered with the TrueType fonts that matplotlib ships.

One crop (cropped-digit SVHN format): the labelled digit centred, its neighbours on the same plate
cut by the crop edges, painted in a random plate colour with a light gradient, a random font
(DejaVu Sans/Serif/Mono, STIX General, Computer Modern), small rotation and shear, blur, reduced
contrast and sensor noise; 28x28 RGB uint8.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

RENDER_VERSION = 1
SIZE = 28
_FONT_PREFIXES = ("DejaVuSans.", "DejaVuSans-", "DejaVuSansMono", "DejaVuSerif.", "DejaVuSerif-",
                  "STIXGeneral", "cmr10", "cmb10", "cmss10", "cmtt10", "cmti10")


def font_files() -> list[str]:
    """Sorted paths of matplotlib's TrueType fonts that carry the digits 0-9."""
    import matplotlib
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    files = sorted(str(p) for p in ttf.glob("*.ttf") if p.name.startswith(_FONT_PREFIXES))
    if not files:
        raise FileNotFoundError(f"no digit fonts found in {ttf} (is matplotlib installed?)")
    return files


@lru_cache(maxsize=256)
def _font(path: str, size: int):
    from PIL import ImageFont
    return ImageFont.truetype(path, size)


def _affine_inverse(rot_deg: float, shear: float, cx: float, cy: float) -> tuple:
    """PIL AFFINE data (output -> input map) for rotation then shear about (cx, cy)."""
    th = np.deg2rad(rot_deg)
    fwd = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]) @ np.array(
        [[1.0, shear], [0.0, 1.0]])
    inv = np.linalg.inv(fwd)
    c = np.array([cx, cy])
    off = c - inv @ c
    return (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1])


def _glyph_masks(label: int, font_path: str, rng: np.random.Generator):
    """(all digits, centre digit) as float masks in [0, 1] on a canvas, after rotation/shear."""
    from PIL import Image, ImageDraw
    fs = int(rng.integers(40, 64))
    font = _font(font_path, fs)
    chars, mid = [str(label)], 0
    if rng.random() < 0.65:  # a neighbour on the left
        chars.insert(0, str(rng.integers(10)))
        mid = 1
    if rng.random() < 0.65:  # and/or on the right
        chars.append(str(rng.integers(10)))
    W, H = 4 * fs, 2 * fs
    widths = [font.getlength(c) for c in chars]
    gap = rng.uniform(-0.05, 0.25) * fs
    x = (W - sum(widths) - gap * (len(chars) - 1)) / 2
    full, centre = Image.new("L", (W, H)), Image.new("L", (W, H))
    d_full, d_centre = ImageDraw.Draw(full), ImageDraw.Draw(centre)
    for i, (c, w) in enumerate(zip(chars, widths)):
        d_full.text((x + w / 2, H / 2), c, font=font, fill=255, anchor="mm")
        if i == mid:
            d_centre.text((x + w / 2, H / 2), c, font=font, fill=255, anchor="mm")
        x += w + gap
    data = _affine_inverse(float(np.clip(rng.normal(0, 5), -12, 12)), rng.uniform(-0.2, 0.2),
                           W / 2, H / 2)
    full = full.transform((W, H), Image.AFFINE, data, resample=Image.BILINEAR)
    centre = centre.transform((W, H), Image.AFFINE, data, resample=Image.BILINEAR)
    return full, centre


def _crop_to_digit(full, centre, rng: np.random.Generator) -> np.ndarray:
    """Square crop around the centre digit (its height 55-80% of the crop), resized to 28x28."""
    from PIL import Image
    x0, y0, x1, y1 = centre.getbbox()
    size = (y1 - y0) / rng.uniform(0.55, 0.8)
    cx = (x0 + x1) / 2 + rng.uniform(-0.05, 0.05) * size
    cy = (y0 + y1) / 2 + rng.uniform(-0.05, 0.05) * size
    box = tuple(int(round(v)) for v in (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2))
    crop = full.crop(box).resize((SIZE, SIZE), Image.LANCZOS)
    return np.asarray(crop, dtype=np.float32) / 255.0


def _plate_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(background, foreground) RGB in [0, 1] with a luminance difference of at least 0.3."""
    lum = np.array([0.299, 0.587, 0.114])

    def muted(c):  # street photos are far from saturated: pull the colour toward its grey
        return lum @ c + rng.uniform(0.15, 0.6) * (c - lum @ c)

    while True:
        bg, fg = muted(rng.random(3)), muted(rng.random(3))
        if abs(lum @ bg - lum @ fg) >= 0.3:
            return np.clip(bg, 0, 1), np.clip(fg, 0, 1)


def _paint(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import gaussian_filter, zoom
    bg, fg = _plate_colours(rng)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1) - 0.5
    ang = rng.uniform(0, 2 * np.pi)
    light = 1 + rng.uniform(0, 0.5) * (np.cos(ang) * xx + np.sin(ang) * yy)
    light = light + zoom(rng.normal(0, 0.06, (4, 4)), SIZE / 4, order=1)
    img = (bg * (1 - mask[..., None]) + fg * mask[..., None]) * light[..., None]
    sigma = rng.uniform(0.2, 1.2)
    if sigma > 0.2:
        img = gaussian_filter(img, sigma=(sigma, sigma, 0))
    contrast = rng.uniform(0.5, 1.0)
    img = img.mean() + contrast * (img - img.mean())
    img = img + rng.normal(0, rng.uniform(0, 0.025), img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def render_digit(label: int, font_path: str, rng: np.random.Generator) -> np.ndarray:
    """One 28x28x3 uint8 crop of digit ``label`` on a house-number plate."""
    full, centre = _glyph_masks(label, font_path, rng)
    return _paint(_crop_to_digit(full, centre, rng), rng)


def render_digits(labels: np.ndarray, fonts: list[str], rng: np.random.Generator) -> np.ndarray:
    """Crops for each label, each in a font drawn from ``fonts``: uint8 (N, 28, 28, 3)."""
    return np.stack([render_digit(int(y), fonts[rng.integers(len(fonts))], rng) for y in labels])

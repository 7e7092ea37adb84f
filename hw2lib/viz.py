"""Figures: grids and strips of images. matplotlib only; nothing here computes results."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .images import to_uint8


def mosaic(images, pad: int = 1, pad_value: int = 255) -> np.ndarray:
    """(R, C, H, W, 3) images -> one (R*(H+pad)-pad, C*(W+pad)-pad, 3) uint8 picture."""
    a = to_uint8(images)
    R, C, H, W, _ = a.shape
    out = np.full((R * (H + pad) - pad, C * (W + pad) - pad, 3), pad_value, np.uint8)
    for r in range(R):
        for c in range(C):
            out[r * (H + pad):r * (H + pad) + H, c * (W + pad):c * (W + pad) + W] = a[r, c]
    return out


def class_rows(images, labels, *, per_class: int = 10, n_classes: int = 10) -> np.ndarray:
    """The first ``per_class`` images of each class, as (n_classes, per_class, H, W, 3)."""
    labels = np.asarray(labels)
    rows = []
    for c in range(n_classes):
        idx = np.flatnonzero(labels == c)[:per_class]
        if len(idx) < per_class:
            raise ValueError(f"class {c} has {len(idx)} images, need {per_class}")
        rows.append(to_uint8(images[idx]))
    return np.stack(rows)


MAX_WIDTH_INCHES = 9.0  # the page's text column at save_figure's dpi: wider figures are shrunk
# on the page, and their labels with them


def grid_figure(grid, *, row_labels=None, col_labels=None, title=None, cell_inches: float = 0.5,
                xlabel=None, ylabel=None):
    """A figure showing a (R, C, H, W, 3) grid with optional row and column labels. Cells are
    made smaller than ``cell_inches`` where the images alone would be wider than the page's
    column (:data:`MAX_WIDTH_INCHES`), so labels keep about their size on the page."""
    import matplotlib.pyplot as plt
    g = to_uint8(grid)
    R, C, H, W, _ = g.shape
    pic = mosaic(g)
    cell_inches = min(cell_inches, (MAX_WIDTH_INCHES - 0.6) / (C * W / H))  # row labels aside
    fig, ax = plt.subplots(figsize=(max(2.5, C * cell_inches * W / H) + 0.6, R * cell_inches + 0.6))
    ax.imshow(pic, interpolation="nearest")
    ax.set_xticks([c * (W + 1) + W / 2 for c in range(C)] if col_labels is not None else [])
    ax.set_yticks([r * (H + 1) + H / 2 for r in range(R)] if row_labels is not None else [])
    if col_labels is not None:
        ax.set_xticklabels(col_labels, fontsize=8)
    if row_labels is not None:
        ax.set_yticklabels(row_labels, fontsize=8)
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=9)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=9)
    fig.tight_layout()
    return fig


def save_figure(fig, path) -> Path:
    """Write ``fig`` as PNG (folders created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def line_figure(x, series: dict, *, xlabel: str = "", ylabel: str = "", title: str = ""):
    """One line per entry of ``series`` ({label: y values}) against ``x``."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.5, 3))
    for label, y in series.items():
        ax.plot(x, y, marker="o", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def curves_figure(curves: dict):
    """One panel per entry of ``curves`` ({title: (steps, values, y label)}); a plain ε MSE is
    drawn on a log axis, a ratio on a linear one."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(curves), figsize=(4.6 * len(curves), 3), squeeze=False)
    for ax, (title, (x, y, what)) in zip(axes[0], curves.items()):
        ax.plot(x, y)
        ax.set(xlabel="training step", ylabel=what, title=title,
               yscale="log" if what == "ε MSE" else "linear")
        ax.title.set_fontsize(10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def case_panel(images, titles, *, suptitle: str = "", cell_inches: float = 1.9):
    """One row of images, each with a multi-line title (e.g. truth, prediction, top-3)."""
    import matplotlib.pyplot as plt
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(cell_inches * n, cell_inches + 1.1), squeeze=False)
    for ax, img, t in zip(axes[0], images, titles):
        ax.imshow(to_uint8(img), interpolation="nearest")
        ax.set_title(t, fontsize=7.5, loc="left")
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def bar_figure(labels, values: dict, *, ylabel: str = "", title: str = "", width: float = 9.0,
               percent: bool = False, errors: dict | None = None):
    """Grouped bars: one group per label, one bar per entry of ``values`` ({name: array}), with
    error bars from ``errors`` (the same keys). ``percent``: values are fractions, drawn in %
    as dots with their error bars on an axis that starts a little below the smallest value
    less its error (so that differences near 100% show; a bar would claim a length from zero
    that a cut axis does not show); the legend sits outside the axes."""
    import matplotlib.pyplot as plt
    x = np.arange(len(labels))
    k = len(values)
    scale = 100 if percent else 1
    fig, ax = plt.subplots(figsize=(width, 3.2))
    errors = errors or {}
    for i, (name, v) in enumerate(values.items()):
        err = errors.get(name)
        at, y = x + (i - (k - 1) / 2) * 0.8 / k, scale * np.asarray(v, dtype=float)
        yerr = None if err is None else scale * np.asarray(err, dtype=float)
        if percent:
            ax.errorbar(at, y, yerr=yerr, fmt="o", markersize=5, capsize=2, elinewidth=0.8,
                        label=name)
        else:
            ax.bar(at, y, 0.8 / k, label=name, yerr=yerr, capsize=2,
                   error_kw={"elinewidth": 0.8})
    if percent:
        lo = np.nanmin([np.nanmin(np.asarray(v, dtype=float) - np.asarray(errors.get(n, 0.0)))
                        for n, v in values.items()])
        ax.set_ylim(max(0.0, np.floor(scale * lo) - 1), 100.5)
    ax.set_xticks(x, labels, rotation=60 if len(labels) > 12 else 0, fontsize=8, ha="right"
                  if len(labels) > 12 else "center")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    if k > 1:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def panels_figure(x, panels: list[dict], *, xlabel: str = "", marks: dict | None = None):
    """Side-by-side line panels over one ``x``. Each panel: {"title", "ylabel", "series":
    {label: (y, yerr or None[, matplotlib line keywords])}, "hlines": {label: y} (grey
    reference levels), "log": bool}. ``marks`` ({label: x}) draws a dashed vertical line in
    every panel."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 3.2), squeeze=False)
    for ax, p in zip(axes[0], panels):
        for label, (y, err, *style) in p["series"].items():
            ax.errorbar(x, y, yerr=err, label=label, **{"marker": "o", "capsize": 3,
                                                        **(style[0] if style else {})})
        for i, (label, y) in enumerate(p.get("hlines", {}).items()):
            ax.axhline(y, color="grey", ls=":" if i else "-", lw=1, label=label)
        for i, (label, xm) in enumerate((marks or {}).items()):
            ax.axvline(xm, color=f"C{3 + i}", ls="--", lw=1.2, label=label)
        if p.get("log"):
            ax.set_yscale("log")
        ax.set(xlabel=xlabel, ylabel=p.get("ylabel", ""), xticks=list(x))
        ax.set_title(p.get("title", ""), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2,
                  frameon=False)  # below the axes: never over the data
    fig.tight_layout()
    return fig

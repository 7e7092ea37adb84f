"""``python -m hw2lib data preview``: sample grids of either mode's data, as PNG files."""
from __future__ import annotations

from pathlib import Path


def preview(out, *, mode: str = "embedded", data_dir=None, seed: int = 0,
            cache_dir="data_cache") -> list[Path]:
    """Ten training images per digit of each set, and 40 faces; returns the files written."""
    import matplotlib
    matplotlib.use("Agg")
    from .. import viz
    from . import face_images, load_digit_sets
    out, paths = Path(out), []
    for name, ds in load_digit_sets(mode, data_dir=data_dir, seed=seed,
                                    cache_dir=cache_dir).items():
        grid = viz.class_rows(ds.x_train, ds.y_train, per_class=10)
        fig = viz.grid_figure(grid, row_labels=range(10), title=f"{name} (train)")
        paths.append(viz.save_figure(fig, out / f"{name}.png"))
    faces = face_images(mode, data_dir=data_dir)[:40]
    fig = viz.grid_figure(faces.reshape(4, 10, *faces.shape[1:]), title="faces")
    paths.append(viz.save_figure(fig, out / "faces.png"))
    return paths

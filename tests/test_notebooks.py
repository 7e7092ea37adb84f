"""Smoke runs of the problem notebooks under papermill on tiny parameters, with the committed
embedded-mode checkpoints (make checkpoints rebuilds them)."""
import json
from pathlib import Path

import pytest

from hw2lib.report import build_html, off_machine_urls, run_notebook

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "checkpoints"

TINY = {
    "p1_ddpm.ipynb": dict(steps=2, n_cols=2, sweep_w=[0.0, 4.0], sweep_per_digit=1),
    "p2_ddim.ipynb": dict(etas=[0.0, 1.0], n_grid=2, n_alpha=3),
    "p3_zeroshot.ipynb": dict(n_cases=2),
    "p3_personalize.ipynb": dict(n_images=2, ddim_steps=3, band_batches=1),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_notebook_runs_on_tiny_parameters(name, tmp_path):
    needed = {"p1_ddpm.ipynb": ["p1_ddpm/model.safetensors", "digit_classifier/model.safetensors"],
              "p2_ddim.ipynb": ["p2_faces/model.safetensors"],
              "p3_zeroshot.ipynb": ["p3_clip/model.safetensors"],
              "p3_personalize.ipynb": ["p3_t2i/model.safetensors", "p3_ti/references.safetensors",
                                       "p3_clip/model.safetensors"]}
    for f in needed[name]:
        assert (CKPT / f).exists(), f"committed checkpoint file {f} is missing"
    figs = tmp_path / "figs"
    params = {**TINY[name], "fig_dir": str(figs), "cache_dir": str(ROOT / "data_cache")}
    if name == "p2_ddim.ipynb":
        params["noise_dir"] = str(tmp_path / "noise")
    run_notebook(ROOT / "notebooks" / name, tmp_path / name, params, cell_timeout=600)
    metrics = json.loads((figs / "metrics.json").read_text())
    pngs = {p.name for p in figs.glob("*.png")}
    if name == "p1_ddpm.ipynb":
        assert {"grid_mnistm.png", "grid_svhn.png", "reverse_mnistm.png", "guidance_choice.png",
                "guidance_svhn.png"} <= pngs
        assert all(0 <= r["accuracy"] <= 1 and r["images"] == 20 for r in metrics["accuracy"])
        cnn = [r for r in metrics["accuracy"] if r["classifier"] == "project CNN"]
        assert all(r["colour TV floor"] > 0 and r["KID floor sd"] > 0 for r in cnn)
        assert len(metrics["sweep_look"]) == 4 and metrics["rule_w"] in (0.0, 4.0)
        assert set(metrics["rule_candidates"]) <= {0.0, 4.0}
    elif name == "p2_ddim.ipynb":
        assert {"eta_grid.png", "interpolation.png", "interpolation_norm.png"} <= pngs
        assert metrics["mse_mean"] < 1e-3, "our DDIM must reproduce the diffusers ground truth"
    elif name == "p3_personalize.ipynb":
        assert {"references.png", "loss_curves.png", "concepts.png", "composition.png"} <= pngs
        assert len(metrics["composition"]) == 2 and len(metrics["concepts"]) == 4
    else:
        assert {"successes.png", "failures.png", "per_class.png"} <= pngs
        assert metrics["n_images"] == 2000
        assert metrics["accuracy"]["ensemble"]["top1"] > 0.5, "the committed CLIP has regressed"
    html = build_html([tmp_path / name], tmp_path / "index.html").read_text()
    assert off_machine_urls(html) == []
    # every figure is captioned, and nothing leaks as raw or stderr output
    assert html.count("<figcaption") == len(pngs)
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in html
    assert 'data-mime-type="text/plain"' not in html

"""The rehearsal's small version: course-shaped inputs (course image sizes and file formats, the
real ViT-B/32, narrow face UNet and Stable Diffusion in the course's file formats), then every
course command on them in its own process, each stage timed and measured. ``make rehearsal``
runs the same code at the course's sizes and adds make report MODE=course."""
import json

import pytest
import torch

from hw2lib.rehearse import build as B

pytestmark = pytest.mark.slow


def test_inputs_have_the_course_formats(tmp_path):
    from hw2lib.data import check_tree
    root = B.write_tree(tmp_path / "hw2_data", B.SMALL)
    module, n = B.write_face_unet(root, tmp_path / "m", B.SMALL)
    reports = check_tree(root, full=True)
    assert all(r.status == "ok" for r in reports), [(r.name, r.problems) for r in reports]
    assert torch.load(root / "face" / "noise" / "03.pt").shape == (1, 3, 256, 256)
    sd = torch.load(root / "face" / "UNet.pt", weights_only=True)
    assert isinstance(sd, dict) and sum(v.numel() for v in sd.values()) == n
    # the full face UNet is the course's size (counted on the meta device: nothing allocated)
    from diffusers import UNet2DModel
    with torch.device("meta"):
        assert 100e6 < sum(p.numel() for p in UNet2DModel(**B.FACE_UNET_FULL).parameters()) < 120e6


def test_small_rehearsal_runs_every_course_command(tmp_path, capsys):
    from hw2lib import cli
    rc = cli.main(["rehearse", "--out", str(tmp_path / "r"), "--scale", "small", "--no-report"])
    out = capsys.readouterr().out
    assert rc == 0, out
    res = json.loads((tmp_path / "r" / "rehearsal.json").read_text())
    names = [s["name"] for s in res["stages"]]
    assert names == ["build inputs", "data check", "P1 train", "P1 hw2_1.sh", "P1 score",
                     "P2 hw2_2.sh", "P2 mse", "P3 zeroshot", "P3 ti train", "P3 hw2_3.sh",
                     "P3 ti score"]
    assert all(s["rc"] == 0 and s["seconds"] > 0 and s["peak_mb"] > 100 for s in res["stages"])
    gen = tmp_path / "r" / "out"
    assert len(list((gen / "p1" / "mnistm").glob("*.png"))) == 10 * B.SMALL.p1_per_digit
    assert sorted(p.name for p in (gen / "p2").glob("*.png")) == [f"{i:02d}.png" for i in range(10)]
    assert len(list((gen / "p3" / "0" / "1").glob("*.png"))) == 1
    # the course's sd-v1-4.ckpt layout (LDM keys) was what ti train loaded
    ck = torch.load(tmp_path / "r" / "models" / "sd-v1-4.ckpt", weights_only=True, mmap=True)
    assert "model.diffusion_model.input_blocks.0.0.weight" in ck["state_dict"]
    # the per-stage table and the GPU estimate
    md = (tmp_path / "r" / "rehearsal.md").read_text()
    assert "| P3 hw2_3.sh | ok |" in md and "full course on one GPU" in md
    assert res["forward_flops"]["clip_image"] > 4e9  # ViT-B/32 at 224 px: ~4.4 GFLOP

    # P3.2's notebook in course mode on the same outputs: Stable Diffusion from the lone .ckpt
    # with the tokens of `ti train`, judged by ViT-B/32, hw2_3.sh's output scored as the course does
    from pathlib import Path

    from hw2lib.report import run_notebook
    info = json.loads((tmp_path / "r" / "inputs.json").read_text())
    figs = tmp_path / "p32"
    params = {"mode": "course", "data_dir": info["data"], "sd": info["sd"]["ckpt"],
              "sd_config": info["sd"]["config"], "clip_weights": info["clip_weights"],
              "ti_ckpt": str(tmp_path / "r" / "ckpt" / "ti"), "ti_out": str(gen / "p3"),
              "n_images": 1, "ddim_steps": 1, "band_batches": 1, "band_batch": 1,
              "fig_dir": str(figs)}
    nb = Path(__file__).resolve().parents[1] / "notebooks" / "p3_personalize.ipynb"
    run_notebook(nb, tmp_path / "p32.ipynb", params, cell_timeout=600)
    metrics = json.loads((figs / "metrics.json").read_text())
    assert metrics["mode"] == "course" and metrics["guidance"] == 6.5
    assert [r["prompt"] for r in metrics["concepts"]][:2] == ["a <new1>", "a dog"]
    assert {"references.png", "concepts.png", "composition.png"} <= {p.name for p in figs.glob("*.png")}
    assert "The course's scores of hw2_3.sh's output" in (tmp_path / "p32.ipynb").read_text()

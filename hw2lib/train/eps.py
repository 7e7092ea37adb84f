"""Training an eps-model (Ho et al. 2020, eq. 14) and exporting it as a UNet checkpoint."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from ..diffusion import Schedule, eps_loss, min_snr_weight
from .export import export_checkpoint
from .loop import TrainConfig, TrainResult, fit


def train_eps_model(model: torch.nn.Module, schedule: Schedule, images: torch.Tensor,
                    labels: torch.Tensor | None, cfg: TrainConfig, out_dir, *,
                    null_label: int | list[int] | None = None,
                    progress: bool = True) -> TrainResult:
    """Train ``model(x, t, class_labels=y).sample`` to predict eps (Ho et al. eq. 14) with
    :func:`fit`. images: float (N, C, H, W) in [-1, 1]; labels: int64 (N,) or None
    (unconditional); a fraction ``cfg.p_uncond`` of labels becomes ``null_label`` (an int, or
    one null per class label: ``null_label[y]``).
    ``cfg.snr_gamma``: Min-SNR-gamma weighting of each sample's loss (Hang et al. 2023; 0: off)."""
    n = len(images)
    null_of = torch.as_tensor(null_label) if null_label is not None else None

    def batch_loss(model, g):
        idx = torch.randint(0, n, (cfg.batch_size,), generator=g)
        x0 = images[idx]
        t = torch.randint(0, schedule.T, (cfg.batch_size,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        cond = {}
        if labels is not None:
            y = labels[idx].clone()
            drop = torch.rand(cfg.batch_size, generator=g) < cfg.p_uncond
            y[drop] = null_of if null_of.ndim == 0 else null_of[y[drop]]
            cond["class_labels"] = y
        device = next(model.parameters()).device
        x0, t, noise = x0.to(device), t.to(device), noise.to(device)
        cond = {k: v.to(device) for k, v in cond.items()}
        if cfg.channels_last:
            x0, noise = (v.contiguous(memory_format=torch.channels_last) for v in (x0, noise))
        weight = min_snr_weight(schedule, t, cfg.snr_gamma) if cfg.snr_gamma else None
        return eps_loss(lambda x, tt, **c: model(x, tt, **c).sample, schedule, x0, t=t,
                        noise=noise, weight=weight, **cond)

    return fit(model, batch_loss, cfg, out_dir, progress=progress)


def train_and_export(unet_cfg, images: torch.Tensor, labels: torch.Tensor | None,
                     cfg: TrainConfig, out_dir, *, T: int = 1000,
                     null_label: int | list[int] | None = None,
                     config_extra: dict | None = None, manifest_extra: dict | None = None,
                     command: str = "", export: str = "ema", progress: bool = True) -> Path:
    """Train a UNet2DModel eps-model on a linear schedule and export it into ``out_dir`` with
    :func:`export_checkpoint` (``config.json``: the UNet config, T, ``config_extra``). The
    training state lives in ``out_dir/state`` (kept out of git) so a killed run resumes.
    ``export``: "ema" (default) or "model" (the raw weights, for runs whose EMA still lags)."""
    from ..diffusion import linear_schedule
    from ..nets.unet import build_unet, n_params
    out_dir = Path(out_dir)
    torch.manual_seed(cfg.seed)
    model = build_unet(unet_cfg)
    if export not in ("ema", "model"):
        raise ValueError(f"export must be 'ema' or 'model', got {export!r}")
    res = train_eps_model(model, linear_schedule(T), images, labels, cfg, out_dir / "state",
                          null_label=null_label, progress=progress)
    from accelerate import PartialState
    if not PartialState().is_main_process:  # accelerate launch: one process writes the export
        return out_dir
    weights = res.ema if export == "ema" else res.model
    return export_checkpoint(
        out_dir, res, cfg, module=weights, command=command,
        config={"unet": asdict(unet_cfg), "T": T, "null_label": null_label, **(config_extra or {})},
        unet_params=n_params(weights), weights=export, n_train_images=len(images),
        **(manifest_extra or {}))

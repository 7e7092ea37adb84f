"""The face eps-models: the course's ``UNet.py`` + ``UNet.pt``, or the embedded face DDPM."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError, MissingInputError
from ..files import load_state_dict_file
from ..nets.presets import FACE_UNET
from ..train import TrainConfig, train_and_export
from .ddim import T


def load_course_unet(module_path, ckpt_path, device="cpu"):
    """The course's ``UNet`` class imported from the user's ``UNet.py``, with ``UNet.pt`` loaded
    strictly. Returns ``eps_model(x, t)``."""
    module_path, ckpt_path = Path(module_path), Path(ckpt_path)
    for p, what in ((module_path, "the course's UNet.py (--unet-module)"),
                    (ckpt_path, "the course's UNet.pt (--unet-ckpt)")):
        if not p.exists():
            raise MissingInputError(f"{p} not found: give the path of {what}")
    spec = importlib.util.spec_from_file_location("course_unet", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "UNet"):
        raise InputError(f"{module_path} defines no class UNet")
    model = module.UNet()
    sd = load_state_dict_file(ckpt_path)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise InputError(f"{ckpt_path} does not fit UNet of {module_path}: missing keys "
                         f"{missing[:10]}, unexpected keys {unexpected[:10]}")
    model.eval().to(device)
    from ..precision import autocast

    def eps_model(x, t):
        with autocast(x.device):
            return model(x, t).float()
    return eps_model


def load_face_model(ckpt_dir):
    """The embedded face model: ``eps_model(x, t)`` on (N, 3, H, W), and the UNet itself. A
    grey checkpoint (``"grey_eps": true`` in its config.json: a 1-channel UNet of x . u, see
    :mod:`hw2lib.diffusion.grey`) is sampled in three channels through
    :func:`~hw2lib.diffusion.grey_eps`, which makes every DDIM x0-prediction exactly grey."""
    from ..diffusion import grey_eps
    from ..nets.unet import eps_fn
    from ..train import load_checkpoint
    unet, schedule, cfg = load_checkpoint(ckpt_dir)
    eps_model = eps_fn(unet)
    return (grey_eps(eps_model, schedule) if cfg.get("grey_eps") else eps_model), unet


def face_training_images(size: int = 32) -> torch.Tensor:
    """The 100 LFW faces resized to ``size`` and their mirror images: (200, 1, size, size), grey
    in [-1, 1]."""
    from skimage.transform import resize
    from ..data import build_faces
    faces = np.stack([resize(f, (size, size), anti_aliasing=True) for f in build_faces()])
    faces = np.concatenate([faces, faces[:, :, ::-1]])
    return torch.from_numpy(faces.astype(np.float32))[:, None] * 2 - 1


def train_face_model(out_dir, cfg: TrainConfig, *, command: str = "", export: str = "ema",
                     progress: bool = True, note: str = ""):
    """Unconditional DDPM on the LFW faces (embedded stand-in for the course's face UNet): a
    1-channel UNet (:data:`~hw2lib.nets.presets.FACE_UNET`) trained on y_0 = x_0 . u =
    sqrt(3) g, the grey faces x_0 = g (1, 1, 1) seen along u = (1, 1, 1) / sqrt(3); sampled in
    the course's 3-channel noise format by :func:`load_face_model` (:mod:`hw2lib.diffusion.grey`).
    ``note``: how the run was made, for the manifest."""
    from ..diffusion import grey_coordinate
    if FACE_UNET.in_channels != 1 or FACE_UNET.out_channels != 1:
        raise ValueError("the face model is a 1-channel UNet of the grey coordinate")
    faces = face_training_images(FACE_UNET.sample_size)
    y0 = grey_coordinate(faces.expand(-1, 3, -1, -1))  # sqrt(3) g
    return train_and_export(FACE_UNET, y0, None, cfg, out_dir, T=T, command=command,
                            config_extra={"data": "skimage.data.lfw_subset()[:100], 32x32, flips",
                                          "grey_eps": True},
                            manifest_extra={"note": note} if note else None,
                            export=export, progress=progress)


def face_model(*, unet_module=None, unet_ckpt=None, ckpt="checkpoints/p2_faces", device="cpu"):
    """``eps_model(x, t)`` of the course's UNet (``unet_module`` given) or the embedded one, on
    ``device``."""
    from ..device import resolve
    dev = resolve(device)
    if unet_module:
        return load_course_unet(unet_module, unet_ckpt or "UNet.pt", device=dev)
    eps_model, unet = load_face_model(ckpt)
    unet.to(dev)
    return eps_model

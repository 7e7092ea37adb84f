"""open_clip models from local weights files (never downloaded), and the project's own model
config ``hw2-digit-clip`` (the embedded CLIP of :mod:`.digit_clip`)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import InputError, MissingInputError
from ..files import check_not_lfs_pointer

DIGIT_CLIP = "hw2-digit-clip"  # the open_clip config name of the project's CLIP
CONFIG_DIR = Path(__file__).parent / "configs"


class MissingWeightsError(MissingInputError):
    pass


@dataclass(frozen=True)
class ClipModel:
    model: torch.nn.Module
    preprocess: object  # open_clip's eval transform (PIL image -> tensor)
    tokenizer: object
    name: str
    weights: str


def register_configs() -> None:
    """Add the project's model configs (``configs/*.json``) to open_clip's registry (idempotent)."""
    import open_clip
    for path in sorted(CONFIG_DIR.glob("*.json")):
        if path.stem not in open_clip.list_models():
            open_clip.add_model_config(path)


def _read_torchscript_state_dict(path) -> dict:
    """OpenAI's own ``ViT-B-32.pt`` is a TorchScript archive: take its state dict."""
    sd = torch.jit.load(str(path), map_location="cpu").state_dict()
    for key in ("input_resolution", "context_length", "vocab_size"):
        sd.pop(key, None)
    return sd


def load_clip(name: str = "ViT-B-32", weights=None, *, quick_gelu: bool = False,
              device: str = "cpu") -> ClipModel:
    """An open_clip model with weights read from the local file ``weights`` (never downloaded).

    OpenAI's CLIP weights were trained with QuickGELU: open_clip switches it on for the
    ``openai`` tag but not for a file, so pass ``quick_gelu=True`` with them (the CLI does).
    """
    import open_clip
    register_configs()
    if weights is None or not Path(weights).is_file():
        raise MissingWeightsError(
            f"CLIP weights for {name!r} not found: {weights!r}. Give the local file, e.g. "
            "--pretrained /path/to/ViT-B-32.pt (OpenAI's weights: the TorchScript ViT-B-32.pt "
            "or open_clip_pytorch_model.bin of timm/vit_base_patch32_clip_224.openai); nothing "
            "is downloaded. For the embedded model run `make checkpoints`.")
    check_not_lfs_pointer(weights)
    if name not in open_clip.list_models():
        raise InputError(f"unknown open_clip model {name!r}")
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # "no pretrained weights": they come next
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, pretrained=None, force_quick_gelu=quick_gelu, device=device)
    finally:
        root.setLevel(level)
    try:
        open_clip.load_checkpoint(model, str(weights))
    except RuntimeError as e:
        if "TorchScript" not in str(e) and "torchscript" not in str(e).lower():
            raise InputError(f"{weights}: does not fit {name}: {e}") from e
        model.load_state_dict(_read_torchscript_state_dict(weights))
    except Exception as e:  # noqa: BLE001 - SafetensorError, UnpicklingError...: unreadable
        raise InputError(f"{weights}: not a readable weights file for {name} "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e
    return ClipModel(model.eval(), preprocess, open_clip.get_tokenizer(name), name, str(weights))


def load_digit_clip(ckpt_dir, *, device: str = "cpu") -> ClipModel:
    """The project's embedded CLIP from its checkpoint folder (``model.safetensors``)."""
    return load_clip(DIGIT_CLIP, Path(ckpt_dir) / "model.safetensors", device=device)

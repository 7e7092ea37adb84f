"""Training: the shared resumable loop (``loop``), eps-model training (``eps``), and the one
checkpoint export and reader (``export``)."""
from .eps import train_and_export, train_eps_model
from .export import export_checkpoint, load_checkpoint, thin_history, write_manifest
from .loop import TrainConfig, TrainResult, fit

__all__ = ["TrainConfig", "TrainResult", "export_checkpoint", "fit", "load_checkpoint",
           "thin_history", "train_and_export", "train_eps_model", "write_manifest"]

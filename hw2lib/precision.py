"""Mixed precision by device: on CUDA the networks run under autocast (bfloat16 where the GPU
has it, Ampere and later; float16 before), on the CPU in float32 (bf16 autocast measured ~100x
slower on the AVX2 CPUs this project runs on; see README "Machines and speed"). Outputs are
cast back to float32 by the callers, so samplers and scores always see float32."""
from __future__ import annotations

import contextlib

import torch


def cuda_dtype() -> torch.dtype:
    """bfloat16 on GPUs that support it, else float16."""
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on a CUDA device, nothing on the CPU."""
    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=cuda_dtype())
    return contextlib.nullcontext()


def weights_dtype(device) -> torch.dtype:
    """The dtype to load frozen inference weights in (Stable Diffusion): float16 on CUDA."""
    return torch.float16 if torch.device(device).type == "cuda" else torch.float32

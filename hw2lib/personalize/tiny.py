"""Offline building blocks: CLIP's BPE tokenizer for transformers (from the vocabulary file that
open_clip ships) and a tiny randomly initialised Stable Diffusion pipeline built from configs,
as diffusers' own tests build theirs (used by the tests and the course-mode dry runs)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path


def write_clip_tokenizer(out_dir) -> Path:
    """vocab.json + merges.txt of CLIP's tokenizer (49,408 tokens), rebuilt from open_clip's
    ``bpe_simple_vocab_16e6.txt.gz`` exactly as open_clip's SimpleTokenizer builds its table.
    Returns the folder; ``CLIPTokenizer.from_pretrained(folder)`` loads it."""
    import open_clip
    from open_clip.tokenizer import bytes_to_unicode
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bpe = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    merges = gzip.open(bpe).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in merges]
    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    (out / "tokenizer_config.json").write_text(json.dumps({
        "model_max_length": 77, "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "do_lower_case": True}))
    return out


def clip_tokenizer():
    """transformers' ``CLIPTokenizer`` with CLIP's vocabulary (:func:`write_clip_tokenizer`),
    built in a temporary folder that is gone when this returns (the tokenizer holds its tables
    in memory)."""
    import tempfile

    from transformers import CLIPTokenizer
    with tempfile.TemporaryDirectory() as d:
        return CLIPTokenizer.from_pretrained(str(write_clip_tokenizer(d)))


def tiny_sd_components(tokenizer_dir, *, seed: int = 0) -> dict:
    """UNet2DConditionModel, AutoencoderKL, CLIPTextModel (random, tiny), the real CLIP
    tokenizer, and a DDIM scheduler with Stable Diffusion's betas."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(block_out_channels=(16, 32), layers_per_block=1, sample_size=8,
                                in_channels=4, out_channels=4, norm_num_groups=8,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                cross_attention_dim=32, attention_head_dim=4)
    vae = AutoencoderKL(block_out_channels=(16, 32), in_channels=3, out_channels=3,
                        down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4,
                        norm_num_groups=8, sample_size=16)
    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, hidden_size=32, intermediate_size=37,
        num_attention_heads=4, num_hidden_layers=2, vocab_size=len(tokenizer),
        max_position_embeddings=77, projection_dim=32))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return dict(unet=unet.eval(), vae=vae.eval(), text_encoder=text_encoder.eval(),
                tokenizer=tokenizer, scheduler=scheduler)


def tiny_sd_pipeline(folder, *, seed: int = 0):
    """A tiny StableDiffusionPipeline saved as a diffusers folder (model_index.json, ...)."""
    from diffusers import StableDiffusionPipeline
    folder = Path(folder)
    comps = tiny_sd_components(write_clip_tokenizer(folder / "_tok"), seed=seed)
    pipe = StableDiffusionPipeline(**comps, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(str(folder))
    return folder

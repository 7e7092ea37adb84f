"""Stable Diffusion from local files with the network unreachable: a lone single-file
checkpoint in the layout of sd-v1-4.ckpt (random weights, reduced widths), the shipped v1.4
configs, and the errors that name a missing or wrong file."""
import socket

import pytest
import torch

from hw2lib.errors import InputError, MissingInputError
from hw2lib.personalize import sd, sd_ldm


@pytest.fixture
def no_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*a, **k):
        raise OSError("network access in a test")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def small_sd(tmp_path_factory):
    """(config folder, components, lone .ckpt) at reduced widths."""
    d = tmp_path_factory.mktemp("sd")
    cfg = sd_ldm.write_reduced_configs(sd.SD_V1_CONFIGS, d / "configs")
    comps = sd_ldm.random_components(cfg, seed=0)
    return cfg, comps, sd_ldm.write_ckpt(comps, d / "ckpt" / "sd-v1-4.ckpt")


def test_lone_ckpt_loads_offline_with_the_same_weights(small_sd, no_network, monkeypatch):
    cfg, comps, ckpt = small_sd
    monkeypatch.setattr(sd, "SD_V1_CONFIGS", cfg)  # what ships, at reduced widths
    assert list(ckpt.parent.iterdir()) == [ckpt]  # nothing beside the file
    pipe = sd.load_sd(ckpt)  # no config_dir, no tokenizer files: all from the package
    for name in ("unet", "vae", "text_encoder"):
        ours, loaded = comps[name].state_dict(), getattr(pipe, name).state_dict()
        assert ours.keys() == loaded.keys()
        assert all(torch.equal(ours[k], loaded[k]) for k in ours), name
    assert pipe.tokenizer("a <new1>").input_ids[0] == 49406 and len(pipe.tokenizer) == 49408
    # the model samples on SD's scaled-linear betas, as the shipped scheduler config says
    import json
    sched = json.loads((cfg / "scheduler" / "scheduler_config.json").read_text())
    assert sched["beta_schedule"] == "scaled_linear"
    assert abs(float(pipe.schedule.betas[-1]) - sched["beta_end"]) < 1e-9


def test_shipped_configs_are_stable_diffusion_v1_sized():
    """The shipped configs build v1.4's networks: 859.5M + 83.7M + 123.1M parameters (on the
    meta device: nothing allocated)."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    d = sd.SD_V1_CONFIGS
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(str(d / "unet")))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(str(d / "vae")))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(str(d / "text_encoder")))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(unet) == 859_520_964
    assert count(vae) == 83_653_863
    assert count(text) == 123_060_480
    # every LDM key the conversion writes is one diffusers' loader reads back (full-size names)
    keys = sd_ldm.unet_to_ldm(unet.state_dict(), dict(unet.config))
    assert "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.attn2.to_k.weight" in keys
    assert "model.diffusion_model.input_blocks.3.0.op.weight" in keys
    assert "model.diffusion_model.output_blocks.2.1.conv.weight" in keys


def test_missing_or_wrong_files_are_named(small_sd, tmp_path, no_network):
    cfg, comps, ckpt = small_sd
    with pytest.raises(MissingInputError, match="sd-v1-4.ckpt"):
        sd.load_sd(tmp_path / "sd-v1-4.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.ckpt cannot be read"):
        sd.load_sd(junk, config_dir=cfg)
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    torch.save({"state_dict": {k: v for k, v in state.items() if not k.startswith("cond_stage")}},
               tmp_path / "no_text.ckpt")
    with pytest.raises(InputError, match="CLIP text encoder"):
        sd.load_sd(tmp_path / "no_text.ckpt", config_dir=cfg)
    (tmp_path / "folder" / "unet").mkdir(parents=True)
    (tmp_path / "folder" / "model_index.json").write_text("{}")
    with pytest.raises(MissingInputError, match="unet/diffusion_pytorch_model.safetensors"):
        sd.load_sd(tmp_path / "folder")
    with pytest.raises(MissingInputError, match="lacks .*text_encoder/config.json"):
        (tmp_path / "cfg").mkdir()
        sd.check_sd(ckpt, tmp_path / "cfg")


def test_cuda_is_refused_at_once_without_a_gpu(small_sd):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from hw2lib.errors import UserError
    with pytest.raises(UserError, match="no CUDA GPU"):
        sd.load_sd(small_sd[2], config_dir=small_sd[0], device="cuda")

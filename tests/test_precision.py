"""precision="auto": the choice from (fake) matmul measurements, and the per-machine cache."""
import json

import pytest
import torch

from hw2lib import precision as P
from hw2lib.train import TrainConfig, fit

# GFLOP/s of the three kinds of CPU the project meets (AVX2: README; the others: shapes only)
AVX2 = {"fp32": 124.0, "bf16": 0.9, "n": 512, "load": 0.0, "threads": 2}
AVX512_BF16 = {"fp32": 100.0, "bf16": 210.0, "n": 512, "load": 0.0, "threads": 2}
AMX = {"fp32": 100.0, "bf16": 1500.0, "n": 512, "load": 0.0, "threads": 2}


class FakeMeasure:
    def __init__(self, peaks):
        self.peaks, self.calls = peaks, 0

    def __call__(self):
        self.calls += 1
        return dict(self.peaks)


def never():
    raise AssertionError("measured although the precision was forced or cached")


@pytest.mark.parametrize("peaks, expected", [(AVX2, "fp32"), (AVX512_BF16, "fp32"),
                                             (AMX, "bf16")])
def test_choice_from_measurements(peaks, expected):
    assert P.choose(peaks) == expected


def test_choice_margin_boundary():
    assert P.choose({"fp32": 10.0, "bf16": 10.0 * P.MARGIN}) == "bf16"
    assert P.choose({"fp32": 10.0, "bf16": 10.0 * P.MARGIN - 0.01}) == "fp32"
    assert P.choose({"fp32": 10.0, "bf16": 15.0}, margin=1.0) == "bf16"


def test_cache_measures_once_per_machine(tmp_path, monkeypatch):
    fake = FakeMeasure(AMX)
    first = P.resolve("auto", cache_dir=tmp_path, measure=fake)
    assert first.precision == "bf16" and not first.cached and fake.calls == 1
    second = P.resolve("auto", cache_dir=tmp_path, measure=fake)
    assert second.precision == "bf16" and second.cached and fake.calls == 1
    cache = json.loads((tmp_path / "precision.json").read_text())
    assert list(cache) == [P.machine_key()]
    entry = cache[P.machine_key()]
    assert entry["peaks"]["bf16"] == 1500.0 and entry["torch"] == torch.__version__
    # another torch version (or CPU) is another machine: measured again, both entries kept
    info = P.cpu_info()
    monkeypatch.setattr(P, "cpu_info", lambda: {**info, "torch": "0.0.0"})
    other = P.resolve("auto", cache_dir=tmp_path, measure=FakeMeasure(AVX2))
    assert other.precision == "fp32" and not other.cached
    assert len(json.loads((tmp_path / "precision.json").read_text())) == 2


def test_refresh_and_broken_cache(tmp_path):
    fake = FakeMeasure(AVX2)
    (tmp_path / "precision.json").write_text("{not json")
    peaks, cached = P.machine_peaks(tmp_path, measure=fake)
    assert not cached and fake.calls == 1 and peaks["fp32"] == 124.0
    P.machine_peaks(tmp_path, measure=fake, refresh=True)
    assert fake.calls == 2


def test_a_measurement_on_a_busy_machine_is_not_cached(tmp_path):
    import os
    busy = FakeMeasure({**AMX, "load": float(os.cpu_count() or 1)})
    c = P.resolve("auto", cache_dir=tmp_path, measure=busy)
    assert c.precision == "bf16" and not c.cached and "load" in c.describe()
    assert not (tmp_path / "precision.json").exists()
    # the same choice for the rest of this process (a run never switches precision midway)
    assert P.resolve("auto", cache_dir=tmp_path, measure=FakeMeasure(AVX2)).precision == "bf16"
    assert busy.calls == 1 and not (tmp_path / "precision.json").exists()
    P.machine_peaks(tmp_path, measure=busy, refresh=True)
    assert busy.calls == 2


def test_forced_precision_never_measures(tmp_path):
    for p in ("fp32", "bf16"):
        c = P.resolve(p, cache_dir=tmp_path, measure=never)
        assert c.precision == p and c.requested == p and c.autocast == (p == "bf16")
        assert "forced" in c.describe()
    assert not (tmp_path / "precision.json").exists()
    with pytest.raises(ValueError):
        P.resolve("fp16", cache_dir=tmp_path)


def test_describe_and_summary(tmp_path, monkeypatch):
    P.resolve("auto", cache_dir=tmp_path, measure=FakeMeasure(AVX512_BF16))
    monkeypatch.setattr(P, "default_cache_dir", lambda: tmp_path)
    s = P.summary()
    assert s["precision"] == "fp32" and s["cached"] and s["ratio"] == pytest.approx(2.1)
    assert "bf16 210.0 GFLOP/s vs fp32 100.0 GFLOP/s" in s["text"] and s["cpu"]


def test_real_measurement_is_short_and_positive():
    import time
    t0 = time.perf_counter()
    peaks = P.measure_peaks(n=128, budget_s=0.02)
    assert peaks["fp32"] > 0 and peaks["bf16"] > 0 and peaks["n"] == 128
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize("peaks, autocast", [(AMX, True), (AVX2, False)])
def test_fit_trains_in_the_chosen_precision_and_records_it(tmp_path, monkeypatch, peaks,
                                                           autocast):
    monkeypatch.setattr(P, "default_cache_dir", lambda: tmp_path / "cache")
    P.machine_peaks(tmp_path / "cache", measure=FakeMeasure(peaks))
    seen = []
    model = torch.nn.Linear(4, 1)

    def batch_loss(m, g):
        seen.append(torch.is_autocast_enabled("cpu"))
        return m(torch.randn(8, 4, generator=g)).float().pow(2).mean()

    # no reset of accelerate's process-wide state here: fit must allow the second case's other
    # precision in the same process (a notebook or these tests may train twice)
    cfg = TrainConfig(steps=2, batch_size=8, warmup=1, ema_decay=0.0, channels_last=False)
    assert cfg.precision == "auto"
    res = fit(model, batch_loss, cfg, tmp_path / "run", progress=False)
    assert seen == [autocast, autocast]
    assert res.precision["precision"] == ("bf16" if autocast else "fp32")
    assert res.precision["peaks"]["bf16"] == peaks["bf16"] and res.precision["cached"]


def test_restricted_kernels_are_another_machine():
    """ATEN_CPU_CAPABILITY=default (what `make bench ISA=...` sets) restricts torch's kernels;
    cpu_info names them and the precision cache keys on them, so a bf16 choice measured with
    wide kernels is not reused by a run that cannot use them."""
    import os
    import subprocess
    import sys
    code = ("import json; from hw2lib import precision as P; "
            "print(json.dumps([P.cpu_info()['kernels'], P.machine_key()]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "ATEN_CPU_CAPABILITY": "default"})
    kernels, key = json.loads(out.stdout)
    assert kernels == "DEFAULT"
    assert P.cpu_info()["kernels"] != "DEFAULT" or P.cpu_info()["isa"] == []
    assert key != P.machine_key() or P.cpu_info()["kernels"] == "DEFAULT"


def test_p1_sample_defaults_to_fp32_on_the_cpu_where_auto_would_pick_bf16(tmp_path, monkeypatch):
    """The notebooks call p1.sample without a precision: on the CPU that is fp32 even on a
    machine whose cached benchmark says bf16 pays (the page must not depend on it); "auto"
    is what `p1 sample` asks for."""
    import numpy as np

    from hw2lib import p1
    from hw2lib.diffusion import linear_schedule
    from hw2lib.nets.unet import UNetConfig, build_unet
    P.resolve("auto", cache_dir=tmp_path, measure=FakeMeasure(AMX))  # bf16 cached as the pick
    monkeypatch.setattr(P, "default_cache_dir", lambda: tmp_path)
    assert P.resolve("auto").precision == "bf16"
    torch.manual_seed(0)
    unet = build_unet(UNetConfig(sample_size=28, block_out_channels=(8, 16), layers_per_block=1,
                                 down_block_types=("DownBlock2D", "DownBlock2D"),
                                 up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4,
                                 attention_head_dim=8, num_class_embeds=21)).eval()
    draw = dict(sampler="ddim", steps=3, w=2.0, seed=0)
    default, _ = p1.sample(unet, linear_schedule(), "mnistm", np.arange(4), **draw)
    fp32, _ = p1.sample(unet, linear_schedule(), "mnistm", np.arange(4), precision="fp32", **draw)
    auto, _ = p1.sample(unet, linear_schedule(), "mnistm", np.arange(4), precision="auto", **draw)
    assert np.array_equal(default, fp32)
    assert not np.array_equal(auto, fp32)  # bf16 autocast: another image

"""Precision by machine: fp32 or bfloat16 autocast, chosen by a short matmul micro-benchmark.

CPUs differ: on AVX2-only cores a bf16 matmul is emulated (~100x slower than fp32), with
AVX-512 BF16 about twice as fast, with AMX many times faster. ``precision="auto"`` (the
default of training and sampling) measures the fp32 and bf16 matmul rates once per machine, in
a few hundred milliseconds, caches them (unless the machine was busy) in
``~/.cache/hw2lib/precision.json`` keyed by the CPU
model, its vector instruction sets and the torch version, and picks bf16 autocast only when its
matmul is at least ``margin`` times faster (the rest of a network, convolutions, norms and the
casts, gains less than the matmul does). ``"fp32"`` and ``"bf16"`` force a precision.
:func:`resolve` is what training and sampling call; :func:`summary` is the appendix's record.
On CUDA, :func:`autocast` runs inference networks in bfloat16 where the GPU has it (Ampere and
later), float16 before, and :func:`weights_dtype` loads frozen weights (Stable Diffusion) in
float16; on the CPU both leave float32. Callers cast outputs back to float32.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16")
# bf16 must be this many times faster than fp32 in the matmul to be picked. Measured here (AMD
# EPYC with AVX-512 BF16, no AMX, 2 shared cores, load ~3): matmul bf16 2.2x fp32 (425 against
# 191 GFLOP/s), yet the P1 UNet's forward pass only 1.16x and its training step 1.12x (0.69x at
# a load of 9): convolutions, norms and casts gain less than the matmul, so fp32 (exact,
# comparable across machines) is kept there. AVX2-only cores: ~0.01x; AMX tiles: many times fp32 (16x per
# core in theory; not measured here).
MARGIN = 3.0
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "hw2lib"


def cpu_info() -> dict:
    """{"cpu": model name, "isa": the vector instruction sets that decide fp32 against bf16
    speed, "torch": version} from /proc/cpuinfo (elsewhere: platform's processor name)."""
    import platform
    flags, model = set(), platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu": model, "isa": [f for f in ISA_FLAGS if f in flags], "kernels": kernels(),
            "torch": torch.__version__}


def kernels() -> str:
    """The vector kernels torch dispatches to ("AVX512", "AVX2", "DEFAULT", ...). Below what the
    CPU has where ``ATEN_CPU_CAPABILITY`` restricts them (``make bench ISA=avx2`` times an
    AVX2-only machine's code path on an AVX-512 one; its clock and caches stay this CPU's)."""
    try:
        return torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        return "unknown"


def machine_key(info: dict | None = None) -> str:
    """A short hash of :func:`cpu_info`: one cache entry per (CPU model, ISA, kernels, torch
    version)."""
    info = info or cpu_info()
    blob = json.dumps({k: info.get(k) for k in ("cpu", "isa", "kernels", "torch")},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def measure_peaks(n: int = 512, budget_s: float = 0.15, max_calls: int = 100) -> dict:
    """Achieved GFLOP/s of an n x n x n matmul in fp32 and bf16 on the CPU: the best of repeated
    calls, the two dtypes taken in turn (so that a busy phase of a shared machine hits both),
    each for about ``budget_s`` seconds after one warm-up call (bf16 emulated on AVX2, ~0.3 s a
    call, gets one timed call: 0.75 s in all there, 0.4 s elsewhere). Returns {"fp32": ..., "bf16": ..., "n": n,
    "load": the 1-minute load average before, "threads": torch threads}."""
    import os
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    g = torch.Generator().manual_seed(0)
    mats = {name: (torch.randn(n, n, generator=g).to(dt), torch.randn(n, n, generator=g).to(dt))
            for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    flop = 2 * n ** 3
    best, spent = dict.fromkeys(mats, float("inf")), dict.fromkeys(mats, 0.0)
    for a, b in mats.values():  # warm-up (oneDNN kernels, thread pool)
        a @ b
    for _ in range(max_calls):
        live = [k for k in mats if spent[k] < budget_s]
        if not live:
            break
        for k in live:
            a, b = mats[k]
            t0 = time.perf_counter()
            a @ b
            dt = time.perf_counter() - t0
            best[k], spent[k] = min(best[k], dt), spent[k] + dt
    return {"fp32": flop / best["fp32"] / 1e9, "bf16": flop / best["bf16"] / 1e9, "n": n,
            "load": round(load, 2), "threads": torch.get_num_threads()}


def choose(peaks: dict, margin: float = MARGIN) -> str:
    """"bf16" when the bf16 matmul rate is at least ``margin`` times the fp32 one, else "fp32"."""
    return "bf16" if peaks["bf16"] >= margin * peaks["fp32"] else "fp32"


@dataclass(frozen=True)
class PrecisionChoice:
    """``precision``: "fp32" or "bf16" (autocast); ``requested``: "auto", "fp32" or "bf16";
    ``peaks``: the measured GFLOP/s (empty when forced and never measured here); ``machine``:
    :func:`cpu_info`; ``cached``: the peaks came from the cache file."""
    precision: str
    requested: str
    peaks: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)
    cached: bool = False
    device: str = "cpu"

    @property
    def autocast(self) -> bool:
        return self.precision == "bf16"

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """One line: the choice, why, and on which machine."""
        m = self.machine
        where = f"{m.get('cpu', '?')} ({', '.join(m.get('isa', [])) or 'no AVX2'}), torch {m.get('torch', '?')}"
        if self.requested != "auto":
            return f"precision {self.precision} (forced by --precision {self.requested}) on {where}"
        if not self.peaks:
            return f"precision auto -> {self.precision} on {self.device}"
        p = self.peaks
        return (f"precision auto -> {self.precision}: matmul {p['n']}^3 bf16 {p['bf16']:.1f} "
                f"GFLOP/s vs fp32 {p['fp32']:.1f} GFLOP/s ({p['bf16'] / p['fp32']:.2f}x; bf16 "
                f"needs {MARGIN:g}x) on {where}, {p['threads']} threads, load {p.get('load', '?')}"
                f"{', cached' if self.cached else ''}")


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # absent or broken: measure again and rewrite


_MEASURED: dict = {}  # (cache file, machine key) -> peaks measured in this process


def machine_peaks(cache_dir=None, *, refresh: bool = False, measure=measure_peaks
                  ) -> tuple[dict, bool]:
    """(peaks, cached): this machine's matmul rates from the cache file, measured (and written
    there, unless the load average was at least the number of CPUs) when absent or when
    ``refresh``. ``measure``: the benchmark (tests pass a fake)."""
    import os
    from .files import write_text_atomic
    path = Path(cache_dir or default_cache_dir()) / "precision.json"
    info = cpu_info()
    key = machine_key(info)
    cache = _read_cache(path)
    entry = cache.get(key)
    if entry and not refresh and {"fp32", "bf16"} <= set(entry.get("peaks", {})):
        return entry["peaks"], True
    if (path, key) in _MEASURED and not refresh:  # one choice per process, cached or not
        return _MEASURED[(path, key)], False
    peaks = _MEASURED[(path, key)] = measure()
    if peaks.get("load", 0) >= (os.cpu_count() or 1):
        # a busy machine: the ratio holds up (the dtypes are timed in turn; measured here at a
        # load of 17 on 2 cores: 1.8-2.3x against 2.1x) but the rates do not: keep them for
        # this process only (a run must not switch precision midway), not in the file
        return peaks, False
    cache[key] = {**info, "peaks": peaks, "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(cache, indent=2) + "\n")
    except OSError:
        pass  # a read-only home: measure again next time
    return peaks, False


def resolve(precision: str = "auto", *, device="cpu", cache_dir=None,
            measure=measure_peaks) -> PrecisionChoice:
    """The precision to train or sample with. "fp32" / "bf16": as asked. "auto": on a CUDA
    device bf16 when the GPU supports it (no benchmark), on the CPU :func:`choose` over
    :func:`machine_peaks` (measured once per machine, then cached)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    dev = torch.device(device).type
    info = cpu_info()
    if precision != "auto":
        return PrecisionChoice(precision, precision, machine=info, device=dev)
    if dev == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return PrecisionChoice("bf16" if ok else "fp32", "auto", machine=info, device=dev)
    peaks, cached = machine_peaks(cache_dir, measure=measure)
    return PrecisionChoice(choose(peaks), "auto", peaks=peaks, machine=info, cached=cached,
                           device=dev)


def summary(cache_dir=None) -> dict:
    """For the report's appendix: what ``precision="auto"`` picks on this machine and why
    ({"precision", "fp32 GFLOP/s", "bf16 GFLOP/s", "ratio", "margin", "cpu", "isa", "kernels",
    "torch", "cached", "text"}); measures once if the cache has no entry for this machine."""
    c = resolve("auto", cache_dir=cache_dir)
    return {"precision": c.precision, "fp32 GFLOP/s": c.peaks["fp32"],
            "bf16 GFLOP/s": c.peaks["bf16"], "ratio": c.peaks["bf16"] / c.peaks["fp32"],
            "margin": MARGIN, **{k: c.machine[k] for k in ("cpu", "isa", "kernels", "torch")},
            "cached": c.cached, "text": c.describe()}


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

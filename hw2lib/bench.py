"""``make bench``: what the project's samplers, models and report cost, measured in one run.

Every figure is a time measured here or a ratio of two times measured in the same process:
sampler overhead over the bare UNet forward pass, our loops against diffusers' scheduler loops
on the same UNet, batch and dtype, P1 accuracy against sampling cost, training steps/s per
precision, the UNet's counted FLOPs against a matmul micro-benchmark, and the report's cost.
Results go to ``<out>/bench.json`` and a Markdown table ``<out>/bench.md``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

PROFILES = {
    # name: (batch, sampler steps timed, repeats, images per digit for quality, ddim step counts,
    #        training steps timed, include DDPM-1000 in the quality table, DPM-Solver++ steps)
    "tiny": dict(batch=4, steps=4, repeats=1, per_digit=1, ddim=(4,), train_steps=2, ddpm=False, dpmpp=(4,)),
    "quick": dict(batch=64, steps=20, repeats=3, per_digit=3, ddim=(10, 20, 50), train_steps=6,
                  ddpm=False, dpmpp=(5, 10, 15)),
    "full": dict(batch=100, steps=50, repeats=3, per_digit=10, ddim=(10, 20, 50, 100),
                 train_steps=10, ddpm=True, dpmpp=(5, 10, 15, 25)),
}


def _best_of_interleaved(fns: dict, repeats: int) -> dict:
    """Minimum wall time per entry of ``fns``, the calls taken round-robin (A B C, A B C, ...)
    so that a slow phase of a shared machine falls on every variant alike."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def best_of(fn, repeats: int) -> float:
    """Minimum wall time of ``repeats`` calls (the least disturbed run)."""
    return _best_of_interleaved({"fn": fn}, repeats)["fn"]


@dataclass
class Row:
    section: str
    name: str
    value: float
    unit: str
    note: str = ""


# ------------------------------------------------------------------------- sampler overhead
def sampler_overhead(unet, *, batch: int, steps: int, repeats: int, label_fn=None) -> list[Row]:
    """Per-step time of the bare UNet, our DDPM/DDIM loops and diffusers' loops on that UNet.

    The loops' own cost is also measured exactly with a free eps-model (returns a constant), so
    "overhead" does not drown in the UNet's run-to-run noise."""
    from diffusers import DDIMScheduler, DDPMScheduler
    from .diffusion import ddim_sample, ddim_timesteps, ddpm_sample, linear_schedule
    from .nets.unet import eps_fn

    size = unet.config.sample_size
    x = torch.randn(batch, unet.config.in_channels, size, size, generator=torch.Generator().manual_seed(0))
    y = label_fn(batch) if label_fn else None
    eps = eps_fn(unet)
    cond = {"y": y} if y is not None else {}
    const = torch.zeros_like(x)

    def free(x_t, t, **c):
        return const

    sched_T = linear_schedule(steps)  # DDPM timed over `steps` steps (T = steps); same per step

    def ours_ddpm(model):
        return lambda: ddpm_sample(model, sched_T, noise=x, cond=cond,
                                   generator=torch.Generator().manual_seed(0))

    grid = ddim_timesteps(1000, steps)
    sched_1000 = linear_schedule(1000)

    def ours_ddim(model):
        return lambda: ddim_sample(model, sched_1000, timesteps=grid, noise=x, cond=cond)

    def diffusers_loop(scheduler, model, n):
        def run():
            with torch.inference_mode():
                scheduler.set_timesteps(n)
                xt = x.clone()
                g = torch.Generator().manual_seed(0)
                for t in scheduler.timesteps:
                    tt = torch.full((batch,), int(t), dtype=torch.long)
                    out = model(xt, tt, **cond)
                    xt = scheduler.step(out, t, xt, generator=g).prev_sample
                return xt
        return run

    ddpm_ref = DDPMScheduler(num_train_timesteps=steps, beta_start=1e-4, beta_end=0.02,
                             clip_sample=False)
    ddim_ref = DDIMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02,
                             clip_sample=False, set_alpha_to_one=True, timestep_spacing="leading")

    def unet_only():
        with torch.inference_mode():
            for _ in range(steps):
                eps(x, torch.full((batch,), 500, dtype=torch.long), **cond)

    unet_only()  # warm-up
    loops = {"ours DDPM": (ours_ddpm(eps), ours_ddpm(free)),
             "diffusers DDPMScheduler": (diffusers_loop(ddpm_ref, eps, steps),
                                         diffusers_loop(ddpm_ref, free, steps)),
             "ours DDIM": (ours_ddim(eps), ours_ddim(free)),
             "diffusers DDIMScheduler": (diffusers_loop(ddim_ref, eps, steps),
                                         diffusers_loop(ddim_ref, free, steps))}
    full = _best_of_interleaved({"UNet": unet_only, **{n: f for n, (f, _) in loops.items()}},
                                repeats)
    bare = _best_of_interleaved({n: b for n, (_, b) in loops.items()}, max(repeats, 3))
    t_unet = full["UNet"] / steps
    rows = [Row("sampler", "UNet forward", t_unet * 1e3, "ms/step", f"batch {batch}, fp32")]
    for name in loops:
        t_full, t_bare = full[name] / steps, bare[name] / steps
        rows.append(Row("sampler", f"{name}: loop with UNet", t_full * 1e3, "ms/step",
                        f"{t_full / t_unet:.3f} x UNet"))
        rows.append(Row("sampler", f"{name}: loop alone", t_bare * 1e3, "ms/step",
                        f"overhead {t_bare / t_unet:.2%} of the UNet time"))
    return rows


# ----------------------------------------------------------------------------- FLOPs vs peak
def matmul_peak(n: int = 1024, repeats: int = 5) -> dict[str, float]:
    """Achieved GFLOP/s of an n x n x n matmul in fp32 and bf16 (the hardware's practical peak)."""
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        reps = 1 if dtype == torch.bfloat16 else 3  # bf16 without AMX/AVX512-BF16 is slow
        a @ b
        t = best_of(lambda: [a @ b for _ in range(reps)], repeats if dtype == torch.float32 else 1)
        out[str(dtype).removeprefix("torch.")] = 2 * n ** 3 * reps / t / 1e9
    return out


def unet_flops(unet, batch: int, label_fn=None) -> float:
    """FLOPs of one forward pass (torch.utils.flop_counter: convolutions, matmuls, attention)."""
    from torch.utils.flop_counter import FlopCounterMode
    size = unet.config.sample_size
    x = torch.randn(batch, unet.config.in_channels, size, size)
    kw = {"class_labels": label_fn(batch)} if label_fn else {}
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        unet(x, torch.full((batch,), 500), **kw)
    return float(fc.get_total_flops())


# --------------------------------------------------------------------------- quality vs cost
def quality_vs_cost(ckpt, classifier_ckpt, *, per_digit: int, ddim_steps, ddpm: bool,
                    seed: int = 0, dpmpp_steps=()) -> list[Row]:
    """P1 project-CNN accuracy (mean of both sets) and wall time per sampler setting."""
    from . import p1
    from .classifier import accuracy, load_classifier
    unet, schedule, cfg = p1.load(ckpt)
    clf = load_classifier(classifier_ckpt)
    digits = np.repeat(np.arange(10), per_digit)
    settings = ([("ddim", s) for s in ddim_steps] + [("dpmpp", s) for s in dpmpp_steps]
                + ([("ddpm", 1000)] if ddpm else []))
    rows = []
    for sampler, steps in settings:
        for w in (0.0, 4.0):
            t0, accs = time.perf_counter(), []
            for k, name in enumerate(cfg["sets"]):
                imgs, _ = p1.sample(unet, schedule, name, digits, sampler=sampler, steps=steps,
                                    w=w, seed=seed + k)
                accs.append(accuracy(clf, imgs, digits))
            wall = time.perf_counter() - t0
            n = len(digits) * len(cfg["sets"])
            rows.append(Row("quality", f"{sampler.upper()}-{steps}, w={w:g}", float(np.mean(accs)),
                            "accuracy", f"{wall:.1f} s for {n} images ({wall / n * 100:.1f} s/100)"))
    return rows


# ---------------------------------------------------------------------------------- training
def training_speed(models: dict, *, steps: int, batch: int = 64) -> list[Row]:
    """Training steps/s of each model for fp32 and bf16 autocast, each with and without
    channels_last (the brief measured bf16 + channels_last 2.6x faster on a CPU with AMX).
    ``models``: {name: (build() -> module, batch_loss(module, batch) -> loss)}."""
    rows = []
    for name, (build, loss_fn) in models.items():
        base = None
        for mode in ("fp32", "fp32 + channels_last", "bf16 autocast", "bf16 + channels_last"):
            torch.manual_seed(0)
            m = build()
            if mode.endswith("channels_last"):
                m = m.to(memory_format=torch.channels_last)
            opt = torch.optim.AdamW(m.parameters(), 1e-4)

            def step():
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode.startswith("bf16")):
                    loss = loss_fn(m, batch, mode.endswith("channels_last"))
                opt.zero_grad()
                loss.backward()
                opt.step()
            step()
            t = best_of(step, steps)
            base = base or t
            rows.append(Row("training", f"{name}: {mode}", 1 / t, "steps/s",
                            f"batch {batch}; {base / t:.2f} x fp32"))
    return rows


def embedded_training_models(batch: int) -> dict:
    from .nets.unet import build_unet
    from .nets.presets import FACE_UNET, P1_UNET

    def unet_loss(cfg, labels):
        def loss(m, b, cl):
            x = torch.randn(b, cfg.in_channels, cfg.sample_size, cfg.sample_size)
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            kw = {"class_labels": torch.randint(0, 21, (b,))} if labels else {}
            return m(x, torch.randint(0, 1000, (b,)), **kw).sample.float().pow(2).mean()
        return loss

    def clip_build():
        import open_clip

        from .zeroshot.model import DIGIT_CLIP, register_configs
        register_configs()
        return open_clip.create_model(DIGIT_CLIP)

    def clip_loss(m, b, cl):
        import open_clip
        x = torch.randn(b, 3, 28, 28)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        f_i, f_t, s = m(x, torch.randint(0, 49407, (b, 20)))
        return open_clip.ClipLoss()(f_i.float(), f_t.float(), s.float())

    return {"P1 UNet": (lambda: build_unet(P1_UNET), unet_loss(P1_UNET, True)),
            "P2 face UNet": (lambda: build_unet(FACE_UNET), unet_loss(FACE_UNET, False)),
            "P3 CLIP": (clip_build, clip_loss)}


# ------------------------------------------------------------------------------------ machine
def machine() -> dict:
    """The CPU and software every timing here was measured with: model name, the vector
    instruction sets that decide fp32 against bf16 speed (:func:`hw2lib.precision.cpu_info`),
    threads, torch version."""
    from .precision import cpu_info
    return {**cpu_info(), "threads": torch.get_num_threads()}


# ------------------------------------------------------------------------------------ report
def report_cost(timings_file, checkpoints_dir) -> list[Row]:
    """Notebook times of the last make report; training times of each model and of make checkpoints."""
    rows, tf = [], Path(timings_file)
    if tf.exists():
        from .report.runlog import how_it_ran
        t, run = json.loads(tf.read_text()), how_it_ran(tf)
        shared = run.get("jobs", 1) > 1 and run["how"]  # the note of a notebook run in parallel
        rows += [Row("report", f"notebook {nb}", sec, "s", "last make report, " + (
            shared if shared and nb in run["notebooks"] else "alone")) for nb, sec in t.items()]
        rows.append(Row("report", "notebooks, sum of their times" if shared else
                        "make report, committed checkpoints", sum(t.values()), "s",
                        "sum of the notebooks" + (", each with part of the cores" * bool(shared))))
        if shared:
            rows.append(Row("report", f"make report: wall time of the {len(run['notebooks'])} "
                            f"notebooks before this appendix", run["wall_seconds"], "s", shared))
    else:
        rows.append(Row("report", "make report", float("nan"), "s", f"{tf} absent: run make report"))
    for d in sorted(p for p in Path(checkpoints_dir).iterdir() if p.is_dir()):
        # a model's record of its training: manifest.json, or the digit CNN's info.json
        m = next((d / n for n in ("manifest.json", "info.json") if (d / n).exists()), None)
        if m is None:
            continue
        info = json.loads(m.read_text())
        sec = float(info.get("wall_seconds") or info.get("wall") or 0)
        note = "recorded wall time, measured where the model was trained"
        if cpu := info.get("cpu_seconds"):  # shared cores: the wall time counts other jobs too
            note += (f" (the process's own CPU time: {cpu:,.0f} s over all its threads; the "
                     f"wall time is longer where other jobs shared the cores)")
        rows.append(Row("report", f"training {m.parent.name}", sec, "s", note))
    rows.append(Row("report", "training, all committed models",
                    sum(r.value for r in rows if r.name.startswith("training ")), "s",
                    "sum of the manifests (not comparable with this machine's times)"))
    if (timed := Path(checkpoints_dir) / "make_checkpoints_timing.json").exists():  # from scratch
        t = json.loads(timed.read_text())
        rows.append(Row("report", "make checkpoints from scratch, each model alone",
                        t["sum_of_manifest_wall_seconds"], "s", f"sum of its manifests, {t['date']}, "
                        f"on {t['machine']['cpu']} with {t['machine']['kernels']} kernels and "
                        f"{t['threads']} threads ({timed.name})"))
    return rows


# ------------------------------------------------------------------------------------- main
def run(profile: str = "quick", *, p1_ckpt="checkpoints/p1_ddpm",
        classifier_ckpt="checkpoints/digit_classifier", timings="build/timings.json",
        checkpoints_dir="checkpoints", out="figures/bench", sections=None) -> list[Row]:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}")
    p = PROFILES[profile]
    sections = set(sections or ("sampler", "flops", "quality", "training", "report"))
    from . import p1
    from .nets.presets import P1_UNET
    from .nets.unet import build_unet
    if Path(p1_ckpt, "config.json").exists():
        unet, _, _ = p1.load(p1_ckpt)
    else:  # a random P1 UNet times the same as a trained one
        unet = build_unet(P1_UNET).eval()
    labels = lambda b: torch.randint(0, 20, (b,), generator=torch.Generator().manual_seed(0))  # noqa: E731
    rows: list[Row] = []

    def section(name, fn):
        if name in sections:
            t0 = time.perf_counter()
            rows.extend(fn())
            print(f"[bench] {name}: {time.perf_counter() - t0:.1f} s", flush=True)

    section("sampler", lambda: sampler_overhead(unet, batch=p["batch"], steps=p["steps"],
                                                repeats=p["repeats"], label_fn=labels))

    def flops():
        from .nets.unet import eps_fn
        f = unet_flops(unet, p["batch"], labels)
        x, t, y = torch.randn(p["batch"], 3, 28, 28), torch.full((p["batch"],), 500), labels(p["batch"])
        e = eps_fn(unet)
        with torch.inference_mode():
            e(x, t, y=y)
            fwd = best_of(lambda: e(x, t, y=y), p["repeats"])
        peak = matmul_peak(512 if profile == "tiny" else 1024, repeats=p["repeats"])
        achieved = f / fwd / 1e9
        return [Row("flops", "P1 UNet forward", f / p["batch"] / 1e6, "MFLOP/image",
                    "torch.utils.flop_counter"),
                Row("flops", "P1 UNet achieved", achieved, "GFLOP/s", f"batch {p['batch']}, fp32"),
                Row("flops", "matmul peak fp32", peak["float32"], "GFLOP/s",
                    f"UNet reaches {achieved / peak['float32']:.1%}"),
                Row("flops", "matmul peak bf16", peak["bfloat16"], "GFLOP/s",
                    f"{peak['bfloat16'] / peak['float32']:.2f} x fp32")]

    section("flops", flops)
    if Path(p1_ckpt, "config.json").exists() and Path(classifier_ckpt).exists():
        section("quality", lambda: quality_vs_cost(p1_ckpt, classifier_ckpt,
                                                   per_digit=p["per_digit"], ddim_steps=p["ddim"],
                                                   ddpm=p["ddpm"], dpmpp_steps=p["dpmpp"]))
    section("training", lambda: training_speed(embedded_training_models(p["batch"]),
                                               steps=p["train_steps"], batch=p["batch"]))
    section("report", lambda: report_cost(timings, checkpoints_dir))
    rows = _merge_previous(rows, out, sections)
    write(rows, out, profile)
    return rows


def _merge_previous(rows: list[Row], out, sections) -> list[Row]:
    """A run of some sections keeps the other sections' rows of the previous table."""
    prev = Path(out) / "bench.json"
    if not prev.exists():
        return rows
    old = [Row(**r) for r in json.loads(prev.read_text())["rows"] if r["section"] not in sections]
    order = ["sampler", "flops", "quality", "training", "report"]
    return sorted(old + rows, key=lambda r: order.index(r.section) if r.section in order else 99)


def to_markdown(rows: list[Row]) -> str:
    lines = ["| section | measure | value | unit | note |", "|---|---|---:|---|---|"]
    lines += [f"| {r.section} | {r.name} | {f'{r.value:.4g}' if r.value == r.value else 'n/a'} "
              f"| {r.unit} | {r.note} |" for r in rows]
    return "\n".join(lines)


def write(rows: list[Row], out, profile: str) -> Path:
    (out := Path(out)).mkdir(parents=True, exist_ok=True)
    m = machine()
    meta = {"profile": profile, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "made": time.strftime("%Y-%m-%d %H:%M:%S"),
            "cpu": f"{m['cpu']} ({', '.join(m['isa']) or 'no AVX2'}; torch's kernels: "
                   f"{m['kernels']})"}
    (out / "bench.json").write_text(json.dumps({"meta": meta, "rows": [r.__dict__ for r in rows]},
                                               indent=2) + "\n")
    (out / "bench.md").write_text(to_markdown(rows) + "\n")
    return out

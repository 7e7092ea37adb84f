"""The rehearsal: every course command and ``make report MODE=course`` on the inputs of
:mod:`hw2lib.rehearse.build`, each in its own process with minimal steps; per stage the wall
time, the peak resident memory (the process tree's, from ``wait4``), the FLOPs done and the
throughput, and from FLOPs the time of the full course run on one GPU.

Every stage runs what a student runs, from a scratch copy of the repository's entry points
(``Makefile``, ``notebooks/``, ``hw2_*.sh``; ``.venv`` and ``checkpoints`` linked), so that the
repository's own ``figures/``, ``build/`` and ``report/`` are never touched.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from . import flops as F
from .build import SCALES, TI_SPEC

REPO = Path(__file__).resolve().parents[2]
# Minimal steps: enough to run every line of every stage once.
P1_TRAIN_STEPS, P1_BATCH, P1_STEPS = 2, 8, 2
P2_STEPS = 1
TI_STEPS, TI_N, TI_GEN_STEPS = 1, 1, 1
# Report parameters of the rehearsal: every figure at the course's size, minimal sampling.
REPORT_PARAMS = {"steps": P1_STEPS, "sweep_w": [0.0, 4.0], "sweep_per_digit": 1,
                 "etas": [0.0, 1.0], "n_grid": 2, "n_draws": 1, "n_alpha": 3,
                 "ddim_steps": P2_STEPS, "n_images": 1, "band_batches": 1, "band_batch": 1}
# P3.2's Stable Diffusion passes per generated image and DDIM step (classifier-free guidance: 2
# per prompt, 3 for region-masked composition): 4 one-concept prompts (each token and its init
# word), the naive two-concept prompt and the region-masked composition; the loss-by-band
# table: 5 bands x 3 prompts (the token, its init word, the empty prompt)
P32_PASSES, P32_DECODES, P32_BANDS = 4 * 2 + 2 + 3, 4 + 2, 5 * 3
P32_JUDGED = 4 + 2 * 2  # CLIP images judged per generation: 4 whole images, 2 x 2 halves
# The course's full run (what the estimate is for): P1 with the GPU preset
COURSE = dict(p1_train_steps=30_000, p1_batch=256, ddim=50,
              zeroshot_images=2500, ti_steps=3000, ti_batch=4, ti_n=25, refs_per_concept=5,
              report_p1=dict(n_cols=10, sweep=4 * 10, steps=10),
              report_p2=dict(grid=5 * 4 + (4 * 4 * 6 + 4), alpha=11))  # the grid, its grain draws


@dataclass
class Stage:
    name: str
    argv: list
    env: dict = field(default_factory=dict)
    work: dict = field(default_factory=dict)  # forward passes per network, this rehearsal
    course_work: dict = field(default_factory=dict)  # the same stage in a full course run
    seconds: float = 0.0
    peak_mb: float = 0.0
    rc: int | None = None


def _run(stage: Stage, cwd: Path, log_dir: Path, base_env: dict) -> Stage:
    """Run one stage in its own process group; wall time and the tree's peak RSS (wait4)."""
    log = log_dir / f"{stage.name.replace(' ', '_')}.log"
    env = {**base_env, **{k: str(v) for k, v in stage.env.items()}}
    print(f"==> {stage.name}: {' '.join(map(str, stage.argv))}", flush=True)
    t0 = time.perf_counter()
    with open(log, "w") as f:
        p = subprocess.Popen([str(a) for a in stage.argv], cwd=cwd, env=env, stdout=f,
                             stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    stage.seconds = time.perf_counter() - t0
    stage.peak_mb = usage.ru_maxrss / 1024  # Linux: KiB
    stage.rc = p.returncode
    tail = log.read_text().strip().splitlines()[-3:]
    print(f"    {'ok' if stage.rc == 0 else f'FAILED (exit {stage.rc})'}: {stage.seconds:.1f} s, "
          f"peak {stage.peak_mb:.0f} MB" + ("" if stage.rc == 0 else "\n    " + "\n    ".join(tail)),
          flush=True)
    return stage


def _clone(out: Path) -> Path:
    """A scratch copy of what a student runs, with .venv and checkpoints linked."""
    repo = out / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    for name in ("Makefile", "pyproject.toml", "hw2_1.sh", "hw2_2.sh", "hw2_3.sh"):
        shutil.copy2(REPO / name, repo / name)
    shutil.rmtree(repo / "notebooks", ignore_errors=True)
    shutil.copytree(REPO / "notebooks", repo / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    venv = Path(sys.executable).parents[1]
    for link, target in ((".venv", venv), ("checkpoints", REPO / "checkpoints")):
        if not (repo / link).exists():
            (repo / link).symlink_to(target)
    return repo


def _n_prompts() -> int:
    return sum(len(c["prompt"]) for c in TI_SPEC.values())


def stages(out: Path, info: dict, *, device: str, py: str) -> list[Stage]:
    """Every course command, in the order a student runs them."""
    s = SCALES[info["scale"]["name"]]
    data, models = Path(info["data"]), out / "models"
    ti = data / "textual_inversion"
    sd_cfg = ["--sd-config", info["sd"]["config"]] if info["sd"]["config"] else []
    res = ["--resolution", "512"] if s.sd == "full" else []
    hw = py, "-m", "hw2lib"
    n_ref = 2 * s.refs_per_concept
    c = COURSE
    prompts = _n_prompts()
    # 2 sets, CFG as one doubled batch; the course run samples the GPU preset's UNet
    sample_p1 = lambda n, k, key="p1_unet": {key: 2 * 2 * n * k}  # noqa: E731
    return [
        Stage("data check", [*hw, "data", "check", "--data", data]),
        Stage("P1 train", [*hw, "train", "p1", "--mode", "course", "--data", data, "--out",
                           out / "ckpt" / "p1", "--steps", P1_TRAIN_STEPS, "--batch-size", P1_BATCH,
                           "--save-every", 1, "--cache-dir", out / "cache"],
              work={"p1_unet": 3 * P1_TRAIN_STEPS * P1_BATCH},
              course_work={"p1_gpu_unet": 3 * c["p1_train_steps"] * c["p1_batch"]}),
        Stage("P1 hw2_1.sh", ["bash", "hw2_1.sh", out / "out" / "p1"],
              env={"CKPT": out / "ckpt" / "p1", "STEPS": P1_STEPS, "DEVICE": device,
                   "N": s.p1_per_digit},
              work=sample_p1(10 * s.p1_per_digit, P1_STEPS), course_work=sample_p1(500, c["ddim"], "p1_gpu_unet")),
        Stage("P1 score", [*hw, "p1", "score", out / "out" / "p1", "--course-classifier",
                           info["classifier"]]),
        Stage("P2 hw2_2.sh", ["bash", "hw2_2.sh", data / "face" / "noise", out / "out" / "p2",
                              data / "face" / "UNet.pt"],
              env={"UNET_MODULE": info["unet_module"], "STEPS": P2_STEPS, "DEVICE": device},
              work={"face_unet": 10 * P2_STEPS}, course_work={"face_unet": 10 * c["ddim"]}),
        Stage("P2 mse", [*hw, "p2", "mse", "--pred", out / "out" / "p2", "--gt", data / "face" / "GT"]),
        Stage("P3 zeroshot", [*hw, "p3", "zeroshot", "--mode", "course", "--data", data,
                              "--pretrained", info["clip_weights"], "--device", device],
              work={"clip_image": s.zeroshot_images, "clip_text": s.classes * 19},
              course_work={"clip_image": c["zeroshot_images"], "clip_text": 50 * 19}),
        Stage("P3 ti train", [*hw, "ti", "train", "--sd", models / "sd-v1-4.ckpt", *sd_cfg,
                              "--json", ti / "input.json", "--refs", ti, "--out", out / "ckpt" / "ti",
                              "--steps", TI_STEPS, "--batch-size", 1, "--warmup", 1,
                              "--save-every", 1, *res, "--device", device],
              work={"vae_encode": n_ref, "sd_unet": 3 * TI_STEPS, "sd_text": 3 * TI_STEPS},
              course_work={"vae_encode": 2 * c["refs_per_concept"],
                           "sd_unet": 3 * c["ti_steps"] * c["ti_batch"],
                           "sd_text": 3 * c["ti_steps"] * c["ti_batch"]}),
        Stage("P3 hw2_3.sh", ["bash", "hw2_3.sh", ti / "input.json", out / "out" / "p3",
                              models / "sd-v1-4"],
              env={"EMBEDS": out / "ckpt" / "ti" / "learned_embeds", "N": TI_N,
                   "STEPS": TI_GEN_STEPS, "DEVICE": device},
              work={"sd_unet": prompts * TI_N * TI_GEN_STEPS * 2, "vae_decode": prompts * TI_N},
              course_work={"sd_unet": prompts * c["ti_n"] * c["ddim"] * 2,
                           "vae_decode": prompts * c["ti_n"]}),
        Stage("P3 ti score", [*hw, "ti", "score", "--json", ti / "input.json", "--out",
                              out / "out" / "p3", "--refs", ti, "--clip-weights", info["clip_weights"],
                              "--device", device],
              work={"clip_image": prompts * TI_N + n_ref},
              course_work={"clip_image": prompts * c["ti_n"] + 2 * c["refs_per_concept"]}),
    ]


def report_stage(out: Path, info: dict, *, device: str) -> Stage:
    venv = Path(sys.executable).parents[1]
    params = " ".join(f"-p '{k}={v}'" for k, v in REPORT_PARAMS.items())
    n1, n2, sc = REPORT_PARAMS, COURSE, SCALES[info["scale"]["name"]]
    p1_imgs = 2 * (10 * 10 + 10 * len(n1["sweep_w"]) * n1["sweep_per_digit"])
    p2_imgs = (len(n1["etas"]) * n1["n_grid"] + 2 * n1["n_alpha"] + 2 * 10  # grid, paths, MSE
               + n1["n_grid"] * (1 + (len(n1["etas"]) - 1) * n1["n_draws"]))  # grain draws
    return Stage("make report MODE=course",
                 ["make", "-o", f"{venv}/.installed", "report", f"VENV={venv}", "MODE=course",
                  f"DATA={info['data']}", f"UNET_MODULE={info['unet_module']}",
                  f"COURSE_CLASSIFIER={info['classifier']}", f"P1_CKPT={out / 'ckpt' / 'p1'}",
                  f"CLIP_WEIGHTS={info['clip_weights']}", f"TI_OUT={out / 'out' / 'p3'}",
                  f"SD={info['sd']['ckpt']}", f"SD_CONFIG={info['sd']['config']}",
                  f"TI_CKPT={out / 'ckpt' / 'ti'}",
                  f"DEVICE={device}", f"REPORT_PARAMS={params}"],
                 work={"p1_unet": 2 * p1_imgs * n1["steps"], "face_unet": p2_imgs * n1["ddim_steps"],
                       "clip_image": sc.zeroshot_images + 2 * sc.refs_per_concept
                       + n1["n_images"] * P32_JUDGED + _n_prompts() * TI_N,
                       "vae_encode": 2 * sc.refs_per_concept,
                       "sd_unet": n1["n_images"] * n1["ddim_steps"] * P32_PASSES
                       + P32_BANDS * n1["band_batches"] * n1["band_batch"],
                       "vae_decode": n1["n_images"] * P32_DECODES},
                 course_work={"p1_gpu_unet": 2 * 2 * (100 + 10 * n2["report_p1"]["sweep"])
                              * n2["report_p1"]["steps"],
                              "face_unet": (n2["report_p2"]["grid"] + 2 * n2["report_p2"]["alpha"]
                                            + 20) * n2["ddim"],
                              "clip_image": n2["zeroshot_images"] + 2 * n2["refs_per_concept"]
                              + 32 * P32_JUDGED + _n_prompts() * n2["ti_n"],
                              "vae_encode": 2 * n2["refs_per_concept"],
                              "sd_unet": 32 * 25 * P32_PASSES + P32_BANDS * 3 * 8,
                              "vae_decode": 32 * P32_DECODES})


def summarise(done: list[Stage], fl: dict, fl_course: dict, *, gpu_tflops: float,
              cpu: str) -> str:
    rows = ["| stage | result | wall time | peak memory | FLOPs done | throughput | full course "
            "FLOPs | full course on one GPU |", "|---|---|---|---|---|---|---|---|"]
    tot_s = tot_course = 0.0
    for s in done:
        f, fc = F.total(s.work, fl), F.total(s.course_work, fl_course)
        tot_s += s.seconds
        tot_course += fc
        thr = f"{f / s.seconds / 1e9:.1f} GFLOP/s" if f else ""
        gpu = f"{fc / (gpu_tflops * 1e12) / 60:.1f} min" if fc else "-"
        rows.append(f"| {s.name} | {'ok' if s.rc == 0 else f'exit {s.rc}'} | {s.seconds:.1f} s | "
                    f"{s.peak_mb:,.0f} MB | {f / 1e12:.2f} T | {thr} | {fc / 1e15:.2f} P | {gpu} |")
    rows.append(f"| **total** | | **{tot_s / 60:.1f} min** | | | | {tot_course / 1e15:.1f} P | "
                f"**{tot_course / (gpu_tflops * 1e12) / 60:.0f} min** |")
    head = (f"Rehearsal on {cpu}; GPU estimate at an effective {gpu_tflops:g} TFLOP/s "
            "(forward FLOPs x passes; a training step = 3 forwards; data loading, checkpoint "
            "I/O and the report's page build not counted).\n\n")
    return head + "\n".join(rows) + "\n"


def cpu_name() -> str:
    """The CPU as :func:`hw2lib.precision.cpu_info` reads it (one reader), and its core count."""
    from ..precision import cpu_info
    return f"{cpu_info()['cpu']}, {os.cpu_count()} cores"


def rehearse(out, *, scale: str = "full", device: str = "cpu", gpu_tflops: float = 40.0,
             report: bool = True, check: bool = True, only=None) -> int:
    """Build the inputs, run every stage (``only``: the stages whose names start with one of
    these, on the inputs of an earlier run), print and write ``<out>/rehearsal.md`` and
    ``.json``. Returns 0 when every stage passed."""
    from ..device import resolve
    from ..nets.presets import P1_UNET
    from ..personalize.sd import SD_V1_CONFIGS
    resolve(device)
    if not shutil.which("make") and report:
        raise UserError("make is not installed: needed for `make report` (apt-get install make)")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    py = sys.executable
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    repo = _clone(out)
    build = Stage("build inputs", [py, "-m", "hw2lib", "rehearse", "--out", out, "--scale", scale,
                                   "--build-only"])
    done = [] if only else [_run(build, repo, out / "logs", env)]
    if done and build.rc != 0:
        return 1
    if not (out / "inputs.json").exists():
        raise UserError(f"{out / 'inputs.json'} not found: run the whole rehearsal first")
    info = json.loads((out / "inputs.json").read_text())
    todo = stages(out, info, device=device, py=py)
    if report:
        todo.append(report_stage(out, info, device=device))
        if check:
            todo.append(Stage("report check", [py, "-m", "hw2lib", "report", "check",
                                               "report/index.html", "--screens", out / "screens"]))
    for st in todo:
        if not only or any(st.name.startswith(o) for o in only):
            done.append(_run(st, repo, out / "logs", env))
    fl = F.forward_flops(unet_module=info["unet_module"],
                         sd_config=info["sd"]["config"] or SD_V1_CONFIGS, p1_unet_cfg=P1_UNET,
                         sd_resolution=512 if info["scale"]["sd"] == "full" else 128)
    F.save(out / "flops.json", fl)
    # the course estimate uses the networks the rehearsal built: the course's sizes at
    # scale "full" (the small scale only checks the arithmetic)
    table = summarise(done, fl, fl, gpu_tflops=gpu_tflops, cpu=cpu_name())
    name = "rehearsal" + ("_only" if only else "")  # a partial rerun keeps the full table
    (out / f"{name}.md").write_text(table)
    (out / f"{name}.json").write_text(json.dumps(
        {"cpu": cpu_name(), "scale": scale, "device": device, "gpu_tflops": gpu_tflops,
         "forward_flops": fl, "stages": [{k: (str(v) if k == "argv" else v) for k, v in vars(s).items()}
                                         for s in done]}, indent=1, default=str))
    print("\n" + table)
    print(f"logs in {out / 'logs'}/, the page in {repo / 'report' / 'index.html'}")
    return 0 if all(s.rc == 0 for s in done) else 1

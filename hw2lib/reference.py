"""A time measured here, carried to the reference machine of issue 18 (2 AVX2-only cores, fp32)
by the ratio of one measurement both machines made: the P1 UNet's cost per guided image
evaluation. Times on different machines are never compared directly, only through this ratio,
and both of its sides are fp32 on 2 threads.
"""
from __future__ import annotations

import torch

from .bench import best_of

# The reference: issue 18's "100 digits with DDIM-50 + guidance: 45.5 s on AVX2" (`p1 sample`
# with its defaults then: fp32, 2 threads, batches of 250 images, 500 rows with guidance): 100
# images x 50 steps x 2 evaluations (with and without the class).
AVX2 = {"machine": "2 AVX2-only cores, fp32", "seconds": 45.5, "evaluations": 100 * 50 * 2,
        "batch": 500, "what": "100 digits with DDIM-50 and guidance (issue 18)",
        "kernels": "AVX2"}


def ms_per_evaluation(unet, *, batch: int = AVX2["batch"], repeats: int = 3) -> float:
    """The P1 UNet's fp32 forward time per image (ms) at ``batch`` rows (default: the
    reference's), best of ``repeats`` after one warm-up call, on random inputs of its own size."""
    from .nets.unet import eps_fn
    size, ch = unet.config.sample_size, unet.config.in_channels
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(batch, ch, size, size, generator=g), torch.full((batch,), 500)
    y = torch.randint(0, unet.config.num_class_embeds or 1, (batch,), generator=g)
    e = eps_fn(unet)
    with torch.inference_mode():
        e(x, t, y=y)
        return 1000 * best_of(lambda: e(x, t, y=y), repeats) / batch


def on_reference(seconds_here: float, ms_here: float) -> tuple[float, float]:
    """(the reference's ms per evaluation / ``ms_here``, ``seconds_here`` scaled by it): what a
    job that took ``seconds_here`` here would take on the reference machine, if it slowed down
    as the UNet does."""
    ratio = 1000 * AVX2["seconds"] / AVX2["evaluations"] / ms_here
    return ratio, seconds_here * ratio


def text(seconds_here: float, ms_here: float, what: str, limit_s: float = 180.0,
         kernels: str = "") -> str:
    """The appendix's paragraph: ``what`` took ``seconds_here`` here; about how long on the
    reference machine, against ``limit_s`` (issue 18's 3 minutes for make report). ``kernels``:
    the vector kernels this run's torch dispatched to (:func:`hw2lib.precision.kernels`); when
    they are the reference's, the ratio carries only the two CPUs' other differences."""
    ratio, there = on_reference(seconds_here, ms_here)
    ref_ms = 1000 * AVX2["seconds"] / AVX2["evaluations"]
    verdict = "within" if there <= limit_s else "over"
    if not kernels:
        how = ""
    elif kernels == AVX2["kernels"]:
        how = (f" This run's kernels were {kernels}, the reference's (`make report ISA=avx2`), so "
               f"the ratio carries only the CPUs' other differences (clock, caches, memory).")
    else:
        how = (f" This run's kernels were {kernels}, the reference's {AVX2['kernels']}: not every "
               f"part of the report slows down by the UNet's ratio on them; `make report "
               f"ISA=avx2` runs the reference's kernels here for a closer estimate.")
    return (f"**On the reference machine.** The project's reference machine ({AVX2['machine']}) "
            f"took {AVX2['seconds']:g} s for {AVX2['what'].split(' (')[0]}: {ref_ms:.2f} ms per "
            f"image evaluation of the P1 UNet at {AVX2['batch']} rows. In this run the same "
            f"evaluation took {ms_here:.2f} ms here (fp32, best of 2), so that machine is "
            f"{ratio:.2f} times slower at it. {what} took {seconds_here:.1f} s here, which at that "
            f"ratio would be about {there:.0f} s there, {verdict} the project's budget of "
            f"{limit_s / 60:g} minutes for `make report` there.{how} An estimate, not a "
            f"measurement: imports, CLIP and the scene model need not slow down exactly as the "
            f"P1 UNet does.")

"""hw2lib: the library behind hw2report (DLCV HW2: diffusion models and CLIP).

Floors, from the bottom: ``diffusion`` (the math: schedules, sampler steps and loops, guidance,
slerp), ``nets`` (network builders, ``presets``: every architecture and training preset),
``data`` (embedded builders, course readers), ``train`` (the shared loop, the one checkpoint
export), ``images`` (conversions) and ``viz`` (figures); the problems ``p1``, ``p2``,
``zeroshot`` and ``personalize``; ``recipes`` (which function trains each preset); ``report``
(papermill runs, the page, the browser check, the PDF); ``cli`` (argument parsing only).
"""
__version__ = "0.1.0"

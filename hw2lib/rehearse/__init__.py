"""``python -m hw2lib rehearse --out DIR``: the course mode at the course's sizes on random
weights (``make rehearsal``). :mod:`.build` writes the inputs, :mod:`.run` runs every course
command and ``make report MODE=course`` on them and measures each stage, :mod:`.flops` turns
the measurements into an estimate of the full course run on one GPU."""
from __future__ import annotations

# ruff: noqa: RUF002 -- the docstring writes the formulas in math typography
"""Learning-rate schedules (API.md v1.1 "Training controls"), in closed form.

Epoch e (1, 2, …) trains with, for base rate η:
- step:        η·γ^⌊(e−1)/step_size⌋            (PyTorch StepLR)
- exponential: η·γ^(e−1)                          (ExponentialLR)
- cosine:      min_lr + (η − min_lr)·(1 + cos(π·(e−1)/period))/2   (CosineAnnealingLR's
               closed form, T_max = period)
each stepped once per epoch. Past `period` the cosine goes on along the same curve
(back up towards η), as PyTorch's closed form does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

SCHEDULE_KINDS = ("step", "exponential", "cosine")


def scheduled_rate(epoch: int, base: float, schedule: Mapping[str, Any] | None) -> float:
    """The learning rate epoch `epoch` (1-based) trains with; `schedule` None: `base`."""
    if schedule is None:
        return base
    e = max(0, int(epoch) - 1)
    kind = schedule["kind"]
    if kind == "step":
        return base * float(schedule["gamma"]) ** (e // int(schedule["step_size"]))
    if kind == "exponential":
        return base * float(schedule["gamma"]) ** e
    if kind == "cosine":
        low = float(schedule.get("min_lr", 0.0))
        period = int(schedule["period"])
        return low + (base - low) * (1 + math.cos(math.pi * e / period)) / 2
    raise ValueError(f"unknown learning-rate schedule {kind!r}")

# ruff: noqa: RUF001 -- UI text uses real typography (minus sign)
"""The /descent page: gradient descent on y = (x + 2)², one server-rendered SVG frame per step.

Its state (rate, start, step) lives in the URL, so a setup can be shared."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

import numpy as np

from app.nn.descent import (
    CONVERGED_TOL,
    DIVERGED_BOUND,
    FUNCTIONS_1D,
    MAX_STEPS,
    descend,
)
from app.ui import render

FUNCTION = "parabola"  # (x + 2)^2
MINIMUM = -2.0
WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 48, WIDTH - 16, 16, HEIGHT - 30
PRESETS = (
    ("0.05", "0.05 · slow"),
    ("0.5", "0.5 · one step"),
    ("0.95", "0.95 · overshoot"),
    ("1.05", "1.05 · diverges"),
)
# The article starts at x = 0, where the slope is 4; x = -4 has slope -4 (the mirror image).
STARTS = (("0", "x = 0 (slope 4)"), ("-4", "x = −4 (slope −4)"))
DEFAULT_LR, DEFAULT_X0 = 0.05, 0.0
TRAIL_POINTS = 400  # the trail and past points drawn: the latest ones
PAST_POINTS = 60


def frame_delay_ms(step: int) -> int:
    """Playback slows the first steps down to be read, then speeds up (lr 0.05 needs ~140)."""
    return 600 if step < 10 else 250 if step < 40 else 60


def _tangent(
    x: float, y: float, dy: float, span: float, y_dom: tuple[float, float], sx: Any, sy: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel ends of the tangent at (x, y): ±span around x, cut at the plot's y range."""
    lo, hi = x - span, x + span
    if dy != 0:
        # x where the line y + dy·(t - x) meets the bottom and the top of the plot
        xa, xb = sorted((x + (y_dom[0] - y) / dy, x + (y_dom[1] - y) / dy))
        lo, hi = max(lo, xa), min(hi, xb)
    tx = np.array([lo, hi])
    return sx(tx), sy(y + dy * (tx - x))


def clamp_inputs(lr: float, x0: float, step: int) -> tuple[float, float, int]:
    """Keep the page's query parameters in a range that draws (and never raises)."""
    lr = lr if math.isfinite(lr) and 0 < lr <= 5 else DEFAULT_LR
    x0 = x0 if math.isfinite(x0) and abs(x0) <= 50 else DEFAULT_X0
    return lr, x0, min(max(step, 0), MAX_STEPS)


def page_url(lr: float, x0: float, step: int) -> str:
    """The /descent address of this state (the browser's URL follows it: shareable)."""
    return "/descent?" + urlencode({"lr": f"{lr:g}", "x0": f"{x0:g}", "step": step})


def _verdict(xs: list[float], k: int, final: int | None, outcome: str) -> str:
    x = xs[k]
    steps = f"{k:,} step{'' if k == 1 else 's'}"
    if k == final and outcome == "converged":
        return f"converged: within {CONVERGED_TOL:g} of the minimum after {steps}"
    if k == final and outcome == "diverged":
        return (
            f"diverged: |x| passed {DIVERGED_BOUND:,.0f} after {steps}, "
            "each step landing farther from the minimum"
        )
    if k == final:
        return f"stopped after {steps}: neither converged nor diverged"
    dist = abs(x - MINIMUM)
    if k >= 2 and dist > abs(xs[k - 1] - MINIMUM) * 1.0001:
        return "diverging: each step lands farther from the minimum"
    if k >= 1 and (x - MINIMUM) * (xs[k - 1] - MINIMUM) < 0:
        return "overshooting: jumping across the minimum"
    return "descending"


def frame_context(lr: float, x0: float, step: int, playing: bool) -> dict[str, Any]:
    """Everything partials/descent_frame.html draws for step ``step`` of the trajectory."""
    lr, x0, step = clamp_inputs(lr, x0, step)
    fn = FUNCTIONS_1D[FUNCTION]
    # One step beyond the one shown, to know whether the shown one is the last.
    run = descend(FUNCTION, x0, lr, MINIMUM, limit=min(step + 1, MAX_STEPS))
    ended = run.outcome != "unfinished" or len(run.xs) - 1 == MAX_STEPS
    final = len(run.xs) - 1 if ended else None
    k = min(step, len(run.xs) - 1)
    shown = run.xs[max(0, k + 1 - TRAIL_POINTS) : k + 1]
    radius = max(4.0, *(abs(v - MINIMUM) for v in shown)) * 1.15
    x_dom = (MINIMUM - radius, MINIMUM + radius)
    y_dom = (0.0, radius**2 * 1.05)
    sx = lambda v: render.linear_scale(v, x_dom, (LEFT, RIGHT))  # noqa: E731
    sy = lambda v: render.linear_scale(v, y_dom, (BOTTOM, TOP))  # noqa: E731
    xs = np.linspace(*x_dom, 200)
    curve = render.svg_path(sx(xs), sy(np.array([fn.f(v) for v in xs])))
    x = run.xs[k]
    y, dy = fn.f(x), fn.df(x)
    tangent = render.svg_path(*_tangent(x, y, dy, radius / 3, y_dom, sx, sy))
    x_next = x - lr * dy
    past = np.array(shown)
    trail = render.svg_path(sx(past), sy((past - MINIMUM) ** 2))
    can_step = final is None or k < final

    def url(**kw: Any) -> str:
        params = {"lr": f"{lr:g}", "x0": f"{x0:g}", "step": k, "play": 0} | kw
        return "/ui/descent/frame?" + urlencode(params)

    return {
        "lr": f"{lr:g}",
        "x0": f"{x0:g}",
        "step": k,
        "page_url": page_url(lr, x0, k),
        "playing": playing and can_step,
        "width": WIDTH,
        "height": HEIGHT,
        "curve": curve,
        "tangent": tangent,
        "trail": trail,
        "points": [(float(sx(v)), float(sy(fn.f(v)))) for v in shown[-PAST_POINTS:-1]],
        "cx": float(sx(x)),
        "cy": float(sy(y)),
        "arrow": (float(sx(x)), float(sx(np.clip(x_next, *x_dom))), float(sy(y)) - 14),
        "x_ticks": [(float(sx(t)), render.format_tick(t)) for t in render.nice_ticks(*x_dom, 6)],
        "y_ticks": [(float(sy(t)), render.format_tick(t)) for t in render.nice_ticks(*y_dom, 4)],
        "axis": (LEFT, RIGHT, TOP, BOTTOM),
        "text": {
            "x": render.format_number(x, 4),
            "y": render.format_number(y, 4),
            "dy": render.format_number(dy, 4),
            "stepsize": render.format_number(lr * dy, 4),
            "next": render.format_number(x_next, 4),
        },
        "formula": fn.formula,
        "verdict": _verdict(run.xs, k, final, run.outcome),
        "outcome": run.outcome if k == final else "",
        "next_url": url(step=k + 1, play=1),
        "play_url": url(step=k + 1, play=1) if can_step else url(step=0, play=1),
        "pause_url": url(play=0),
        "step_url": url(step=k + 1, play=0),
        "reset_url": url(step=0, play=0),
        "end_url": url(step=MAX_STEPS, play=0),
        "preset_urls": [
            (url(lr=v, step=0, play=1), v, label, v == f"{lr:g}") for v, label in PRESETS
        ],
        "start_urls": [
            (url(x0=v, step=0, play=0), v, label, v == f"{x0:g}") for v, label in STARTS
        ],
        "can_step": can_step,
        "delay": frame_delay_ms(k),
    }

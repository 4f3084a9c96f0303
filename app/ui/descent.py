"""The /descent page: gradient descent on y = (x + 2)², one server-rendered SVG frame per step."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

import numpy as np

from app.nn.descent import FUNCTIONS_1D, gradient_descent_1d
from app.ui import render

FUNCTION = "parabola"  # (x + 2)^2
MAX_STEPS = 40
WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 48, WIDTH - 16, 16, HEIGHT - 30
PRESETS = (
    ("0.05", "0.05 · slow"),
    ("0.5", "0.5 · one step"),
    ("0.95", "0.95 · overshoot"),
    ("1.05", "1.05 · diverges"),
)
FRAME_DELAY_MS = 600


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
    lr = lr if math.isfinite(lr) and 0 < lr <= 5 else 0.05
    x0 = x0 if math.isfinite(x0) and abs(x0) <= 50 else 2.0
    return lr, x0, min(max(step, 0), MAX_STEPS)


def frame_context(lr: float, x0: float, step: int, playing: bool) -> dict[str, Any]:
    """Everything partials/descent_frame.html draws for step ``step`` of the trajectory."""
    lr, x0, step = clamp_inputs(lr, x0, step)
    fn = FUNCTIONS_1D[FUNCTION]
    traj = gradient_descent_1d(FUNCTION, x0, lr, MAX_STEPS)
    last = len(traj) - 1
    k = min(step, last)
    shown = [p for p in traj[: k + 1] if p["x"] is not None]
    radius = max(4.0, *(abs(float(p["x"]) + 2) for p in shown)) * 1.15
    x_dom = (-2 - radius, -2 + radius)
    y_dom = (0.0, radius**2 * 1.05)
    sx = lambda v: render.linear_scale(v, x_dom, (LEFT, RIGHT))  # noqa: E731
    sy = lambda v: render.linear_scale(v, y_dom, (BOTTOM, TOP))  # noqa: E731
    xs = np.linspace(*x_dom, 200)
    curve = render.svg_path(sx(xs), sy((xs + 2) ** 2))
    cur = shown[-1]
    x, y, dy = float(cur["x"]), float(cur["y"]), float(cur["dy_dx"])
    tangent = render.svg_path(*_tangent(x, y, dy, radius / 3, y_dom, sx, sy))
    x_next = x - lr * dy
    trail = render.svg_path(
        sx(np.array([float(p["x"]) for p in shown])), sy(np.array([float(p["y"]) for p in shown]))
    )
    dist = abs(x + 2)
    if dist < 1e-3:
        verdict = "converged"
    elif len(shown) > 2 and dist > abs(float(shown[-2]["x"]) + 2) * 1.0001:
        verdict = "diverging: each step lands farther from the minimum"
    elif len(shown) > 1 and (x + 2) * (float(shown[-2]["x"]) + 2) < 0:
        verdict = "overshooting: jumping across the minimum"
    else:
        verdict = "descending"
    can_step = k < last

    def url(**kw: Any) -> str:
        params = {"lr": f"{lr:g}", "x0": f"{x0:g}", "step": k, "play": 0} | kw
        return "/ui/descent/frame?" + urlencode(params)

    return {
        "lr": f"{lr:g}",
        "x0": f"{x0:g}",
        "step": k,
        "max_steps": MAX_STEPS,
        "playing": playing and can_step,
        "width": WIDTH,
        "height": HEIGHT,
        "curve": curve,
        "tangent": tangent,
        "trail": trail,
        "points": [(float(sx(float(p["x"]))), float(sy(float(p["y"])))) for p in shown[:-1]],
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
        "verdict": verdict,
        "presets": PRESETS,
        "next_url": url(step=k + 1, play=1),
        "play_url": url(step=k + 1, play=1) if can_step else url(step=0, play=1),
        "pause_url": url(play=0),
        "step_url": url(step=k + 1, play=0),
        "reset_url": url(step=0, play=0),
        "preset_urls": [
            (
                "/ui/descent/frame?" + urlencode({"lr": v, "x0": f"{x0:g}", "step": 0, "play": 1}),
                v,
                label,
            )
            for v, label in PRESETS
        ],
        "can_step": can_step,
        "delay": FRAME_DELAY_MS,
    }

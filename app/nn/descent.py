"""The article's opening example: gradient descent on a function of one variable."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple


class Function1D(NamedTuple):
    name: str
    formula: str
    f: Callable[[float], float]
    df: Callable[[float], float]


FUNCTIONS_1D: dict[str, Function1D] = {
    f.name: f
    for f in (
        Function1D("parabola", "(x + 2)^2", lambda x: (x + 2) ** 2, lambda x: 2 * (x + 2)),
        Function1D(
            "double_well", "x^4 - 3x^2", lambda x: x**4 - 3 * x**2, lambda x: 4 * x**3 - 6 * x
        ),
        # sqrt(x^2 + 1): |x| with a smooth bottom; its slope never exceeds 1.
        Function1D(
            "smooth_abs",
            "sqrt(x^2 + 1)",
            lambda x: math.sqrt(x * x + 1),
            lambda x: x / math.sqrt(x * x + 1),
        ),
        Function1D("sine", "sin(x)", math.sin, math.cos),
    )
}

DIVERGENCE_LIMIT = 1e12


def _safe(fn: Callable[[float], float], x: float) -> float:
    try:
        return float(fn(x))
    except (OverflowError, ValueError):
        return math.inf


def gradient_descent_1d(
    fn_name: str, x0: float, lr: float, steps: int
) -> list[dict[str, float | None]]:
    """Trajectory [{"step", "x", "y", "dy_dx"}] of x <- x - lr·f'(x), from x0, ``steps`` updates.

    Returns steps + 1 points (the start included) unless |x|, y or dy/dx stops
    being finite or exceeds 1e12, in which case it ends after that point
    (its non-finite numbers as None, so the list stays strict JSON).
    """
    if fn_name not in FUNCTIONS_1D:
        raise ValueError(f"unknown function {fn_name!r}; expected one of {list(FUNCTIONS_1D)}")
    if not (math.isfinite(x0) and math.isfinite(lr)) or steps < 0:
        raise ValueError("x0 and lr must be finite and steps >= 0")
    func = FUNCTIONS_1D[fn_name]
    points: list[dict[str, float | None]] = []
    x = float(x0)
    for step in range(steps + 1):
        y, dy = _safe(func.f, x), _safe(func.df, x)
        values = (x, y, dy)
        ok = all(math.isfinite(v) and abs(v) <= DIVERGENCE_LIMIT for v in values)
        points.append(
            {
                "step": step,
                "x": x if math.isfinite(x) else None,
                "y": y if math.isfinite(y) else None,
                "dy_dx": dy if math.isfinite(dy) else None,
            }
        )
        if not ok or step == steps:
            break
        x = x - lr * dy
    return points


# The article's descent runs until it is done, not for a fixed number of steps: it stops
# when x is within CONVERGED_TOL of the minimum or |x| passes DIVERGED_BOUND. MAX_STEPS
# only guards against a rate so small (or exactly 1 on the parabola, which bounces
# between two points forever) that neither ever happens.
CONVERGED_TOL = 1e-6
DIVERGED_BOUND = 1e6
MAX_STEPS = 100_000


class Descent(NamedTuple):
    """A trajectory ``xs`` (xs[0] = x0) and how it ended: "converged", "diverged", or
    "unfinished" (``limit`` steps taken, neither yet)."""

    xs: list[float]
    outcome: str


def descend(
    fn_name: str,
    x0: float,
    lr: float,
    minimum: float,
    *,
    limit: int = MAX_STEPS,
    tol: float = CONVERGED_TOL,
    bound: float = DIVERGED_BOUND,
) -> Descent:
    """x <- x - lr·f'(x) from x0 until |x - minimum| < tol ("converged"), |x| > bound
    ("diverged"), or ``limit`` steps ("unfinished"). The stopping point is the last of xs."""
    if fn_name not in FUNCTIONS_1D:
        raise ValueError(f"unknown function {fn_name!r}; expected one of {list(FUNCTIONS_1D)}")
    if not (math.isfinite(x0) and math.isfinite(lr)) or limit < 0:
        raise ValueError("x0 and lr must be finite and limit >= 0")
    df = FUNCTIONS_1D[fn_name].df
    xs = [float(x0)]
    x = float(x0)
    while True:
        if abs(x - minimum) < tol:
            return Descent(xs, "converged")
        if not abs(x) <= bound:  # also catches NaN
            return Descent(xs, "diverged")
        if len(xs) > limit:
            return Descent(xs, "unfinished")
        x = x - lr * _safe(df, x)
        xs.append(x)

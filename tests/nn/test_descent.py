"""The article's opening example: 1-D gradient descent."""

from __future__ import annotations

import math

import pytest

from app.nn.descent import (
    CONVERGED_TOL,
    DIVERGED_BOUND,
    FUNCTIONS_1D,
    descend,
    gradient_descent_1d,
)


def test_parabola_trajectory_closed_form() -> None:
    # x <- x - lr * 2(x + 2)  =>  x_k + 2 = (1 - 2 lr)^k (x0 + 2)
    points = gradient_descent_1d("parabola", 3.0, 0.1, 20)
    assert len(points) == 21
    for k, p in enumerate(points):
        expected = -2 + 0.8**k * 5
        assert p["step"] == k
        assert p["x"] == pytest.approx(expected, rel=1e-12)
        assert p["y"] == pytest.approx((expected + 2) ** 2, rel=1e-9)
        assert p["dy_dx"] == pytest.approx(2 * (expected + 2), rel=1e-9)
    assert points[-1]["x"] == pytest.approx(-2, abs=0.1)


def test_too_large_a_step_diverges_and_stops_early() -> None:
    points = gradient_descent_1d("parabola", 3.0, 1.5, 10_000)
    assert len(points) < 100
    last = points[-1]
    assert last["x"] is None or abs(last["x"]) > 1e12 or abs(last["y"] or math.inf) > 1e12


@pytest.mark.parametrize("name", list(FUNCTIONS_1D))
def test_every_function_descends(name: str) -> None:
    points = gradient_descent_1d(name, 0.5, 0.01, 50)
    assert len(points) == 51
    ys = [p["y"] for p in points]
    assert all(y is not None for y in ys)
    assert ys[-1] < ys[0]  # type: ignore[operator]
    f = FUNCTIONS_1D[name]
    h = 1e-6
    numeric = (f.f(0.5 + h) - f.f(0.5 - h)) / (2 * h)
    assert f.df(0.5) == pytest.approx(numeric, rel=1e-6)


def test_double_well_finds_the_nearer_minimum() -> None:
    right = gradient_descent_1d("double_well", 0.5, 0.01, 2000)[-1]["x"]
    left = gradient_descent_1d("double_well", -0.5, 0.01, 2000)[-1]["x"]
    assert right == pytest.approx(math.sqrt(1.5), rel=1e-6)
    assert left == pytest.approx(-math.sqrt(1.5), rel=1e-6)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown function"):
        gradient_descent_1d("cosh", 0, 0.1, 3)
    with pytest.raises(ValueError):
        gradient_descent_1d("parabola", math.nan, 0.1, 3)


# ---------------------------------------------------------------- descend: until done


def closed_form(x0: float, lr: float, k: int) -> float:
    """x_k on (x + 2)²: each step multiplies the distance to -2 by (1 - 2 lr)."""
    return -2 + (1 - 2 * lr) ** k * (x0 + 2)


def test_descend_from_the_articles_start_runs_until_converged() -> None:
    run = descend("parabola", 0.0, 0.05, -2.0)
    assert run.outcome == "converged"
    # the first k with 2 * 0.9^k < 1e-6, worked out in closed form
    k = math.ceil(math.log(1e-6 / 2) / math.log(0.9))
    assert len(run.xs) - 1 == k > 40  # more steps than the old 40-step cap
    assert abs(run.xs[-1] + 2) < CONVERGED_TOL <= abs(run.xs[-2] + 2)
    for i in (0, 1, 10, k):
        assert run.xs[i] == pytest.approx(closed_form(0.0, 0.05, i), abs=1e-12)
    slope = FUNCTIONS_1D["parabola"].df(0.0)
    assert slope == 4


def test_descend_from_minus_four_mirrors_the_start_at_zero() -> None:
    right = descend("parabola", 0.0, 0.05, -2.0)
    left = descend("parabola", -4.0, 0.05, -2.0)
    assert left.outcome == "converged" and len(left.xs) == len(right.xs)
    for a, b in zip(left.xs, right.xs, strict=True):
        assert a + 2 == pytest.approx(-(b + 2), abs=1e-12)


def test_descend_detects_divergence_past_the_bound() -> None:
    run = descend("parabola", 0.0, 1.05, -2.0)
    assert run.outcome == "diverged"
    # |x_k| first passes the bound where |-2 + 2 (-1.1)^k| > 1e6
    k = next(i for i in range(1000) if abs(closed_form(0.0, 1.05, i)) > DIVERGED_BOUND)
    assert len(run.xs) - 1 == k
    assert abs(run.xs[-1]) > DIVERGED_BOUND >= max(abs(x) for x in run.xs[:-1])


def test_descend_stops_at_the_limit_when_neither_happens() -> None:
    # lr 1 on the parabola jumps between x0 and its mirror image forever
    run = descend("parabola", 0.0, 1.0, -2.0, limit=500)
    assert run.outcome == "unfinished" and len(run.xs) == 501
    assert set(run.xs) == {0.0, -4.0}
    short = descend("parabola", 0.0, 0.05, -2.0, limit=3)
    assert short.outcome == "unfinished" and len(short.xs) == 4


def test_descend_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown function"):
        descend("cosh", 0, 0.1, 0)
    with pytest.raises(ValueError):
        descend("parabola", 0, math.inf, -2)

"""The article's opening example: 1-D gradient descent."""

from __future__ import annotations

import math

import pytest

from app.nn.descent import FUNCTIONS_1D, gradient_descent_1d


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

"""Optimizer steps against closed forms and, when importable, torch.optim."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.nn.optimizers import make_optimizer


def _grads(seed: int, shape: tuple[int, ...], steps: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape) for _ in range(steps)]


def test_sgd_closed_form() -> None:
    p = np.array([1.0, -2.0, 3.0])
    g = np.array([0.5, 0.25, -1.0])
    make_optimizer("sgd").step([p], [g], 0.1)
    np.testing.assert_allclose(p, [0.95, -2.025, 3.1], rtol=0, atol=1e-15)


def test_momentum_closed_form() -> None:
    m, lr = 0.9, 0.1
    p = np.array([1.0, -1.0])
    g1, g2 = np.array([1.0, 2.0]), np.array([-0.5, 0.5])
    opt = make_optimizer("momentum", momentum=m)
    opt.step([p], [g1], lr)
    np.testing.assert_allclose(p, [1.0 - 0.1 * 1.0, -1.0 - 0.1 * 2.0])
    opt.step([p], [g2], lr)
    v2 = m * g1 + g2
    np.testing.assert_allclose(p, np.array([1.0, -1.0]) - lr * g1 - lr * v2)


def test_adam_closed_form() -> None:
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.01
    grads = _grads(1, (5,), 4)
    p = np.linspace(-1, 1, 5)
    expected = p.copy()
    m = np.zeros(5)
    v = np.zeros(5)
    opt = make_optimizer("adam")
    for t, g in enumerate(grads, start=1):
        opt.step([p], [g], lr)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        expected = expected - lr * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-15)
    # first Adam step moves every coordinate by ~lr (sign of the gradient)
    first = np.linspace(-1, 1, 5)
    make_optimizer("adam").step([first], [grads[0]], lr)
    np.testing.assert_allclose(first - np.linspace(-1, 1, 5), -lr * np.sign(grads[0]), rtol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_state_dict_round_trip_continues_identically(name: str) -> None:
    grads = _grads(2, (3, 4), 6)
    p1 = np.ones((3, 4))
    opt1 = make_optimizer(name, momentum=0.8)
    for g in grads[:3]:
        opt1.step([p1], [g], 0.05)
    p2 = p1.copy()
    opt2 = make_optimizer(name, momentum=0.8)
    opt2.load_state_dict(opt1.state_dict())
    for g in grads[3:]:
        opt1.step([p1], [g], 0.05)
        opt2.step([p2], [g], 0.05)
    np.testing.assert_array_equal(p1, p2)


def test_unknown_optimizer_and_bad_momentum() -> None:
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("rmsprop")
    with pytest.raises(ValueError, match="momentum"):
        make_optimizer("momentum", momentum=1.0)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_torch_optim(name: str, dtype: str) -> None:
    torch = pytest.importorskip("torch")
    grads = _grads(3, (4, 3), 5)
    p = np.linspace(-1, 1, 12).reshape(4, 3).astype(dtype)
    tp = torch.nn.Parameter(torch.tensor(p.copy()))
    lr = 0.05
    if name == "sgd":
        topt = torch.optim.SGD([tp], lr=lr)
    elif name == "momentum":
        topt = torch.optim.SGD([tp], lr=lr, momentum=0.9)
    else:
        topt = torch.optim.Adam([tp], lr=lr, betas=(0.9, 0.999), eps=1e-8)
    opt = make_optimizer(name, momentum=0.9)
    for g in grads:
        g = g.astype(dtype)
        opt.step([p], [g], lr)
        tp.grad = torch.tensor(g.copy())
        topt.step()
        tol = 1e-6 if dtype == "float32" else 1e-13
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=tol, atol=tol)
    assert not math.isnan(float(p.sum()))

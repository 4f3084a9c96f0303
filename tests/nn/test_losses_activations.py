"""Loss values and activations against closed forms and, when importable, PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.nn.activations import ACTIVATIONS, get_activation, sigmoid, softmax
from app.nn.losses import loss_value, output_delta


def test_mse_is_mean_over_samples_and_outputs() -> None:
    out = np.array([[1.0, 2.0], [3.0, 4.0]])
    target = np.array([[0.0, 2.0], [1.0, 1.0]])
    assert loss_value("mse", out, target) == pytest.approx((1 + 0 + 4 + 9) / 4)


def test_binary_cross_entropy_closed_form_and_clamp() -> None:
    out = np.array([[0.9], [0.2]])
    target = np.array([[1.0], [0.0]])
    assert loss_value("cross_entropy", out, target) == pytest.approx(
        -(math.log(0.9) + math.log(0.8)) / 2
    )
    # a saturated wrong output costs 100 (PyTorch's clamp), not inf
    assert loss_value("cross_entropy", np.array([[1.0]]), np.array([[0.0]])) == 100.0


def test_categorical_cross_entropy_closed_form() -> None:
    out = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    target = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    assert loss_value("cross_entropy", out, target) == pytest.approx(
        -(math.log(0.7) + math.log(0.1)) / 2
    )


def test_unknown_loss_and_bad_pairing() -> None:
    a = np.zeros((2, 1))
    with pytest.raises(ValueError, match="unknown loss"):
        loss_value("hinge", a, a)
    with pytest.raises(ValueError, match="cross_entropy needs"):
        output_delta("cross_entropy", "linear", a, a, a)


def test_sigmoid_and_softmax_are_stable() -> None:
    z = np.array([[-1000.0, 0.0, 1000.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_allclose(sigmoid(z), [[0.0, 0.5, 1.0]])
        s = softmax(z)
    np.testing.assert_allclose(s, [[0.0, 0.0, 1.0]])
    np.testing.assert_allclose(softmax(np.array([[1.0, 2.0, 3.0]])).sum(), 1.0)
    np.testing.assert_allclose(sigmoid(np.array([[0.3]])), [[1 / (1 + math.exp(-0.3))]], rtol=1e-15)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_derivatives(name: str) -> None:
    act = get_activation(name)
    z = np.array([[-2.0, -0.5, 0.3, 1.7]])
    a = act.f(z, None)
    h = 1e-6
    numeric = (act.f(z + h, None) - act.f(z - h, None)) / (2 * h)
    np.testing.assert_allclose(act.df(z, a), numeric, rtol=1e-7, atol=1e-9)
    delta = np.full_like(z, 2.0)
    act.mul_df(z, a, delta, np.empty_like(z))
    np.testing.assert_allclose(delta, 2.0 * act.df(z, a), rtol=1e-15)
    if name == "leaky_relu":
        np.testing.assert_allclose(a, [[-0.02, -0.005, 0.3, 1.7]])


def test_unknown_activation() -> None:
    with pytest.raises(ValueError, match="unknown activation"):
        get_activation("swish")


def test_losses_match_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    out = rng.uniform(0.01, 0.99, (6, 3))
    target = rng.normal(size=(6, 3))
    expected = torch.nn.MSELoss()(torch.tensor(out), torch.tensor(target)).item()
    assert loss_value("mse", out, target) == pytest.approx(expected, rel=1e-12)

    p = rng.uniform(0.01, 0.99, (6, 1))
    y = rng.integers(0, 2, (6, 1)).astype(float)
    expected = torch.nn.BCELoss()(torch.tensor(p), torch.tensor(y)).item()
    assert loss_value("cross_entropy", p, y) == pytest.approx(expected, rel=1e-12)
    # the clamp at -100 is PyTorch's too
    p_sat, y_sat = np.array([[1.0], [0.0]]), np.array([[0.0], [0.0]])
    expected = torch.nn.BCELoss()(torch.tensor(p_sat), torch.tensor(y_sat)).item()
    assert loss_value("cross_entropy", p_sat, y_sat) == pytest.approx(expected)

    logits = rng.normal(size=(6, 4)) * 3
    labels = rng.integers(0, 4, 6)
    expected = torch.nn.CrossEntropyLoss()(torch.tensor(logits), torch.tensor(labels)).item()
    ours = loss_value("cross_entropy", softmax(logits), np.eye(4)[labels])
    assert ours == pytest.approx(expected, rel=1e-12)

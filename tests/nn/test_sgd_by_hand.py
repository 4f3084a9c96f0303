"""One SGD step of a 2-2-1 sigmoid/MSE network, worked out by hand with scalar arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.nn.datasets import make_dataset
from app.nn.training import Trainer


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


W1 = [[0.15, 0.20], [0.25, 0.30]]  # hidden layer: (n_out=2, n_in=2)
B1 = [0.35, 0.35]
W2 = [[0.40, 0.45]]  # output layer: (1, 2)
B2 = [0.60]
X = [[0.05, 0.10], [0.50, -0.30]]
Y = [0.01, 0.99]
LR = 0.5


def hand_step() -> tuple[list[list[float]], list[float], list[list[float]], list[float], float]:
    """The new parameters after one full-batch SGD step, and the loss before it."""
    gw1 = [[0.0, 0.0], [0.0, 0.0]]
    gb1 = [0.0, 0.0]
    gw2 = [[0.0, 0.0]]
    gb2 = [0.0]
    loss = 0.0
    n = len(X)
    for (x1, x2), y in zip(X, Y, strict=True):
        h = [sig(W1[j][0] * x1 + W1[j][1] * x2 + B1[j]) for j in range(2)]
        out = sig(W2[0][0] * h[0] + W2[0][1] * h[1] + B2[0])
        loss += (out - y) ** 2 / n
        # E = mean over the batch of (out - y)^2  =>  dE/dout = 2 (out - y) / n
        d_out = 2 * (out - y) / n * out * (1 - out)
        for j in range(2):
            gw2[0][j] += d_out * h[j]
        gb2[0] += d_out
        for j in range(2):
            d_h = d_out * W2[0][j] * h[j] * (1 - h[j])
            gw1[j][0] += d_h * x1
            gw1[j][1] += d_h * x2
            gb1[j] += d_h
    new_w1 = [[W1[j][i] - LR * gw1[j][i] for i in range(2)] for j in range(2)]
    new_b1 = [B1[j] - LR * gb1[j] for j in range(2)]
    new_w2 = [[W2[0][j] - LR * gw2[0][j] for j in range(2)]]
    new_b2 = [B2[0] - LR * gb2[0]]
    return new_w1, new_b1, new_w2, new_b2, loss


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_sgd_step_matches_hand_computation(dtype: str) -> None:
    data = make_dataset(
        {"kind": "custom", "task": "regression", "x": X, "y": Y, "test_fraction": 0}
    )
    # the split permutes the samples; the full-batch gradient is a mean, so order is moot
    trainer = Trainer(
        data,
        hidden_layers=[2],
        activation="sigmoid",
        output_activation="sigmoid",
        loss="mse",
        learning_rate=LR,
        optimizer="sgd",
        batch_size=None,
        dtype=dtype,
    )
    net = trainer.network
    assert net.biases is not None
    net.weights[0][...] = W1
    net.biases[0][...] = B1
    net.weights[1][...] = W2
    net.biases[1][...] = B2
    new_w1, new_b1, new_w2, new_b2, loss_before = hand_step()
    assert trainer.evaluate().train_loss == pytest.approx(loss_before, rel=1e-6)
    trainer.train_epoch()
    tol = 1e-12 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(net.weights[0], new_w1, rtol=tol, atol=tol)
    np.testing.assert_allclose(net.biases[0], new_b1, rtol=tol, atol=tol)
    np.testing.assert_allclose(net.weights[1], new_w2, rtol=tol, atol=tol)
    np.testing.assert_allclose(net.biases[1], new_b2, rtol=tol, atol=tol)
    # and the step really moved them
    assert abs(net.weights[1][0, 0] - W2[0][0]) > 1e-3

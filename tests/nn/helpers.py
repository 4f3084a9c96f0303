"""Shared helpers for the nn tests: tiny datasets and a finite-difference oracle."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.nn.datasets import Dataset
from app.nn.losses import loss_value
from app.nn.network import MLP


def tiny_dataset(
    task: str, n_inputs: int, n_outputs: int, n: int = 12, seed: int = 0, n_test: int = 4
) -> Dataset:
    """Random data: classification with n_outputs (1 = binary) outputs, or regression."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + n_test, n_inputs))
    y: NDArray[Any]
    if task == "classification":
        k = 2 if n_outputs == 1 else n_outputs
        y = np.arange(n + n_test) % k
        n_classes = k
    else:
        y = rng.normal(size=(n + n_test, n_outputs))
        n_classes = 0
    return Dataset(
        kind="custom",
        task=task,
        x_train=x[:n],
        y_train=y[:n],
        x_test=x[n:],
        y_test=y[n:],
        n_inputs=n_inputs,
        n_outputs=n_outputs,
        n_classes=n_classes,
    )


def numerical_gradient(
    net: MLP, x: NDArray[np.float64], target: NDArray[np.float64], loss: str, h: float = 1e-6
) -> NDArray[np.float64]:
    """Central differences of the batch-mean loss w.r.t. every entry of ``net.params``."""
    params = net.params
    grad = np.zeros_like(params)
    for i in range(params.size):
        old = params[i]
        params[i] = old + h
        plus = loss_value(loss, net.forward(x), target)
        params[i] = old - h
        minus = loss_value(loss, net.forward(x), target)
        params[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def relative_error(a: NDArray[np.floating], b: NDArray[np.floating]) -> float:
    """max |a - b| relative to the larger of the two gradients' scales."""
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()), 1e-12)
    return float(np.abs(a - b).max() / scale)

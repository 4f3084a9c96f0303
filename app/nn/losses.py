"""Losses (API.md "Math conventions") and the output layer's delta.

``output`` and ``target`` are (n, n_out) arrays of the same shape: a
classification target is one-hot (binary: the 0/1 label in one column).

- ``mse``: mean over samples *and* outputs of (output - target)² (PyTorch ``MSELoss``).
- ``cross_entropy``: mean over samples of -Σ target·log(output) — PyTorch
  ``BCELoss`` for one sigmoid output (both log terms), ``CrossEntropyLoss`` for
  a softmax. Logs are clamped at -100 exactly as PyTorch's ``BCELoss`` does,
  so a saturated output gives a large finite loss rather than ``inf``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from app.nn.activations import get_activation

Array = NDArray[np.floating]

LOSSES = ("mse", "cross_entropy")

LOG_CLAMP = -100.0


def _clamped_log(p: Array) -> Array:
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(p), LOG_CLAMP)


def loss_value(loss: str, output: Array, target: Array) -> float:
    """The mean loss of a batch: ``output``, ``target`` (n, n_out) -> float."""
    if output.shape != target.shape:
        raise ValueError(f"output shape {output.shape} != target shape {target.shape}")
    n = output.shape[0]
    if n == 0:
        return float("nan")
    if loss == "mse":
        diff = output - target
        return float(np.mean(diff * diff))
    if loss == "cross_entropy":
        if output.shape[1] == 1:
            total = target * _clamped_log(output) + (1.0 - target) * _clamped_log(1.0 - output)
        else:
            total = target * _clamped_log(output)
        return float(-np.sum(total) / n)
    raise ValueError(f"unknown loss {loss!r}; expected one of {list(LOSSES)}")


def fused_delta(loss: str, output_activation: str) -> bool:
    """True when dE/dz of the output layer is simply (a - y)/n (sigmoid+BCE, softmax+CE)."""
    return loss == "cross_entropy" and output_activation in ("sigmoid", "softmax")


def output_delta(loss: str, output_activation: str, z: Array, a: Array, target: Array) -> Array:
    """dE/dz of the output layer for the batch-mean loss E: (n, n_out) -> (n, n_out).

    For sigmoid+BCE and softmax+CE the chain rule collapses to (a - y)/n; it is
    the derivative of the unclamped loss (they differ only where the clamp bites).
    """
    n = a.shape[0]
    if loss == "cross_entropy":
        if output_activation == "sigmoid" and a.shape[1] == 1:
            fused: Array = (a - target) / n
            return fused
        if output_activation == "softmax" and a.shape[1] >= 2:
            fused_sm: Array = (a - target) / n
            return fused_sm
        raise ValueError(
            "cross_entropy needs one sigmoid output or a softmax over >= 2 outputs, "
            f"not {output_activation} with {a.shape[1]} output(s)"
        )
    if loss == "mse":
        delta: Array = (a - target) * (2.0 / (n * a.shape[1]))  # dE/da
        act = get_activation(output_activation)
        act.mul_df(z, a, delta, np.empty_like(delta))
        return delta
    raise ValueError(f"unknown loss {loss!r}; expected one of {list(LOSSES)}")

"""Activation functions: a name -> (f, f') registry, numerically stable.

Every function works on a batch ``z`` of shape (n, units) and returns an array
of the same shape. ``f(z, out)`` may write into ``out``; ``df(z, a)`` gets the
pre-activation ``z`` and the activation ``a = f(z)`` (whichever is cheaper to
use) and returns f'(z) elementwise. ``mul_df(z, a, delta, tmp)`` multiplies
``delta`` in place by f'(z) — the trainer's allocation-free backward pass —
using ``tmp`` (same shape) as scratch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]

LEAKY_SLOPE = 0.01


class Activation(NamedTuple):
    name: str
    f: Callable[[Array, Array | None], Array]
    df: Callable[[Array, Array], Array]
    mul_df: Callable[[Array, Array, Array, Array], None]


def _out(z: Array, out: Array | None) -> Array:
    return np.empty_like(z) if out is None else out


# sigmoid(z) = (1 + tanh(z/2)) / 2: never overflows (1/(1+exp(-z)) does for z << 0).
def sigmoid(z: Array, out: Array | None = None) -> Array:
    a = _out(z, out)
    np.multiply(z, 0.5, out=a)
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


def _sigmoid_df(z: Array, a: Array) -> Array:
    return a * (1.0 - a)


def _sigmoid_mul_df(z: Array, a: Array, delta: Array, tmp: Array) -> None:
    np.subtract(1.0, a, out=tmp)
    tmp *= a
    delta *= tmp


def tanh(z: Array, out: Array | None = None) -> Array:
    return np.tanh(z, out=_out(z, out))


def _tanh_df(z: Array, a: Array) -> Array:
    return 1.0 - a * a


def _tanh_mul_df(z: Array, a: Array, delta: Array, tmp: Array) -> None:
    np.multiply(a, a, out=tmp)
    np.subtract(1.0, tmp, out=tmp)
    delta *= tmp


def relu(z: Array, out: Array | None = None) -> Array:
    return np.maximum(z, 0.0, out=_out(z, out))


def _relu_df(z: Array, a: Array) -> Array:
    return (z > 0).astype(z.dtype)


def _relu_mul_df(z: Array, a: Array, delta: Array, tmp: Array) -> None:
    np.greater(z, 0.0, out=tmp)
    delta *= tmp


def leaky_relu(z: Array, out: Array | None = None) -> Array:
    # max(z, 0.01 z) equals z for z > 0 and 0.01 z otherwise.
    if out is z:  # in place: the scaled copy cannot share z's memory
        np.maximum(z, z * LEAKY_SLOPE, out=out)
        return out
    a = _out(z, out)
    np.multiply(z, LEAKY_SLOPE, out=a)
    np.maximum(z, a, out=a)
    return a


def _leaky_relu_df(z: Array, a: Array) -> Array:
    return np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype)


def _leaky_relu_mul_df(z: Array, a: Array, delta: Array, tmp: Array) -> None:
    # f' = 0.01 + 0.99·[z > 0]
    np.greater(z, 0.0, out=tmp)
    tmp *= 1.0 - LEAKY_SLOPE
    tmp += LEAKY_SLOPE
    delta *= tmp


def linear(z: Array, out: Array | None = None) -> Array:
    if out is None:
        return z.copy()
    if out is not z:
        np.copyto(out, z)
    return out


def _linear_df(z: Array, a: Array) -> Array:
    return np.ones_like(z)


def _linear_mul_df(z: Array, a: Array, delta: Array, tmp: Array) -> None:
    return None


def softmax(z: Array, out: Array | None = None) -> Array:
    """Row-wise softmax of (n, k) logits; the row max is subtracted so exp never overflows."""
    a = _out(z, out)
    np.subtract(z, z.max(axis=1, keepdims=True), out=a)
    np.exp(a, out=a)
    a /= a.sum(axis=1, keepdims=True)
    return a


def _softmax_df(z: Array, a: Array) -> Array:
    # Softmax has no elementwise derivative (its Jacobian couples the outputs);
    # losses.output_delta applies the full Jacobian instead.
    raise ValueError("softmax has no elementwise derivative; use losses.output_delta")


def _softmax_mul_df(z: Array, a: Array, delta: Array, tmp: Array) -> None:
    # delta <- J^T delta with J = diag(a) - a a^T, row by row:  a * (delta - <delta, a>)
    np.multiply(delta, a, out=tmp)
    s = tmp.sum(axis=1, keepdims=True)
    delta -= s
    delta *= a


ACTIVATIONS: Mapping[str, Activation] = MappingProxyType(
    {
        "sigmoid": Activation("sigmoid", sigmoid, _sigmoid_df, _sigmoid_mul_df),
        "tanh": Activation("tanh", tanh, _tanh_df, _tanh_mul_df),
        "relu": Activation("relu", relu, _relu_df, _relu_mul_df),
        "leaky_relu": Activation("leaky_relu", leaky_relu, _leaky_relu_df, _leaky_relu_mul_df),
        "linear": Activation("linear", linear, _linear_df, _linear_mul_df),
    }
)
"""Hidden-layer activations."""

SOFTMAX = Activation("softmax", softmax, _softmax_df, _softmax_mul_df)

OUTPUT_ACTIVATIONS = ("sigmoid", "softmax", "linear")


def get_activation(name: str) -> Activation:
    """The activation called ``name`` (hidden ones and ``softmax``); ValueError if unknown."""
    if name == "softmax":
        return SOFTMAX
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {[*ACTIVATIONS, 'softmax']}"
        ) from None

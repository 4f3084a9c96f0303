"""Activation functions: a name -> (f, f') registry, numerically stable; the one home
of each activation's math, in every form the code needs it.

Every function works on a batch ``z`` of shape (n, units) and returns an array
of the same shape. ``f(z, out)`` may write into ``out``; ``df(z, a)`` gets the
pre-activation ``z`` and the activation ``a = f(z)`` (whichever is cheaper to
use) and returns f'(z) elementwise. ``mul_df(z, a, delta, tmp)`` multiplies
``delta`` in place by f'(z), using ``tmp`` (same shape) as scratch.

The compiled trainer (``kernel.py``) takes the same math as op lists bound to
preallocated buffers: ``ops(z, tmp, c)`` computes z <- f(z) in place, and
``dops(a, src, dst, tmp, c)`` computes dst <- src · f'(z) from a = f(z) (relu and
leaky_relu read f'(z) from ``tmp``, where ``ops`` left it). ``c`` holds 0-d
constants in the network's dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]

LEAKY_SLOPE = 0.01


Op = tuple[Callable[..., Any], tuple[Any, ...]]


class KernelConsts(Protocol):
    """0-d arrays in the network's dtype (``kernel.Consts``)."""

    zero: Array
    half: Array
    one: Array
    slope: Array
    one_minus_slope: Array


class Activation(NamedTuple):
    name: str
    f: Callable[[Array, Array | None], Array]
    df: Callable[[Array, Array], Array]
    mul_df: Callable[[Array, Array, Array, Array], None]
    ops: Callable[[Array, Array, KernelConsts], list[Op]]
    dops: Callable[[Array, Array, Array, Array, KernelConsts], list[Op]]


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


def _sigmoid_ops(z: Array, tmp: Array, c: KernelConsts) -> list[Op]:
    return [
        (np.multiply, (z, c.half, z)),
        (np.tanh, (z, z)),
        (np.multiply, (z, c.half, z)),
        (np.add, (z, c.half, z)),
    ]


def _sigmoid_dops(a: Array, src: Array, dst: Array, tmp: Array, c: KernelConsts) -> list[Op]:
    return [
        (np.subtract, (c.one, a, tmp)),
        (np.multiply, (tmp, a, tmp)),
        (np.multiply, (src, tmp, dst)),
    ]


def tanh(z: Array, out: Array | None = None) -> Array:
    return np.tanh(z, out=_out(z, out))


def _tanh_df(z: Array, a: Array) -> Array:
    return 1.0 - a * a


def _tanh_mul_df(z: Array, a: Array, delta: Array, tmp: Array) -> None:
    np.multiply(a, a, out=tmp)
    np.subtract(1.0, tmp, out=tmp)
    delta *= tmp


def _tanh_ops(z: Array, tmp: Array, c: KernelConsts) -> list[Op]:
    return [(np.tanh, (z, z))]


def _tanh_dops(a: Array, src: Array, dst: Array, tmp: Array, c: KernelConsts) -> list[Op]:
    return [
        (np.square, (a, tmp)),
        (np.subtract, (c.one, tmp, tmp)),
        (np.multiply, (src, tmp, dst)),
    ]


def relu(z: Array, out: Array | None = None) -> Array:
    return np.maximum(z, 0.0, out=_out(z, out))


def _relu_df(z: Array, a: Array) -> Array:
    return (z > 0).astype(z.dtype)


def _relu_mul_df(z: Array, a: Array, delta: Array, tmp: Array) -> None:
    np.greater(z, 0.0, out=tmp)
    delta *= tmp


# In the kernel, relu and leaky_relu multiply z by their derivative, which they leave in
# tmp for the backward pass (np.maximum and np.sign are 2-3x slower than these ufuncs).
def _relu_ops(z: Array, tmp: Array, c: KernelConsts) -> list[Op]:
    return [(np.greater, (z, c.zero, tmp)), (np.multiply, (z, tmp, z))]


def _mask_dops(a: Array, src: Array, dst: Array, tmp: Array, c: KernelConsts) -> list[Op]:
    """relu and leaky_relu: f'(z) is still in tmp from the forward pass."""
    return [(np.multiply, (src, tmp, dst))]


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


def _leaky_relu_ops(z: Array, tmp: Array, c: KernelConsts) -> list[Op]:
    return [
        (np.greater, (z, c.zero, tmp)),
        (np.multiply, (tmp, c.one_minus_slope, tmp)),
        (np.add, (tmp, c.slope, tmp)),
        (np.multiply, (z, tmp, z)),
    ]


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


def _linear_ops(z: Array, tmp: Array, c: KernelConsts) -> list[Op]:
    return []


def _linear_dops(a: Array, src: Array, dst: Array, tmp: Array, c: KernelConsts) -> list[Op]:
    return [] if src is dst else [(np.copyto, (dst, src))]


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


def _softmax_ops(z: Array, tmp: Array, c: KernelConsts) -> list[Op]:
    """Feature-major: z is (n_classes, B); each column is normalised."""
    col = np.empty((1, z.shape[1]), dtype=z.dtype)
    ones = np.ones(z.shape[0], dtype=z.dtype)
    return [
        (np.maximum.reduce, (z, 0, None, col, True)),
        (np.subtract, (z, col, z)),
        (np.exp, (z, z)),
        (np.matmul, (ones, z, col[0])),  # column sums: a matmul beats add.reduce
        (np.divide, (z, col, z)),
    ]


def _softmax_dops(a: Array, src: Array, dst: Array, tmp: Array, c: KernelConsts) -> list[Op]:
    """J^T delta, J = diag(a) - a a^T, per column: a * (delta - <delta, a>), in place."""
    if src is not dst:
        raise ValueError("softmax's Jacobian is applied in place (src must be dst)")
    dot = np.empty((1, a.shape[1]), dtype=a.dtype)
    return [
        (np.multiply, (src, a, tmp)),
        (np.add.reduce, (tmp, 0, None, dot, True)),
        (np.subtract, (src, dot, src)),
        (np.multiply, (src, a, src)),
    ]


ACTIVATIONS: Mapping[str, Activation] = MappingProxyType(
    {
        "sigmoid": Activation(
            "sigmoid", sigmoid, _sigmoid_df, _sigmoid_mul_df, _sigmoid_ops, _sigmoid_dops
        ),
        "tanh": Activation("tanh", tanh, _tanh_df, _tanh_mul_df, _tanh_ops, _tanh_dops),
        "relu": Activation("relu", relu, _relu_df, _relu_mul_df, _relu_ops, _mask_dops),
        "leaky_relu": Activation(
            "leaky_relu",
            leaky_relu,
            _leaky_relu_df,
            _leaky_relu_mul_df,
            _leaky_relu_ops,
            _mask_dops,
        ),
        "linear": Activation(
            "linear", linear, _linear_df, _linear_mul_df, _linear_ops, _linear_dops
        ),
    }
)
"""Hidden-layer activations."""

SOFTMAX = Activation("softmax", softmax, _softmax_df, _softmax_mul_df, _softmax_ops, _softmax_dops)

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

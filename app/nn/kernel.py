"""The trainer's compiled step: straight lists of NumPy calls over preallocated buffers.

On a small network a training step costs what its Python calls cost, so the
step is "compiled" once into a list of ``(ufunc, args)`` pairs whose arrays —
batch views, per-layer buffers, parameter and gradient views, 0-d scalars in
the network's dtype — are all bound in advance, with the output passed as the
last positional argument. Running a step is ``for f, args in ops: f(*args)``:
a few dozen C calls, no allocation, no branching.

Everything is feature-major: a batch is a (features, B) block, each layer's
z, activation and delta is (n_l, B). The weights are (n_out, n_in), so the
forward product is W·a, the backward ones Wᵀ·delta and delta·aᵀ. Row-major
buffers would make the forward a·Wᵀ, which this OpenBLAS's small-matrix
kernels do not cover: it costs about twice W·a at W3's sizes
(benchmarks/README.md has the per-product table). Biases ride along as a last
weight column against a row of ones (see ``Buffers``).

Tricks, each exact up to rounding:
- activations are computed in place in the pre-activation buffer; tanh' and
  sigmoid' come from the activation (1 - a², a(1 - a)); relu and leaky_relu
  compute f'(z) first, as a 0/1 (or 0.01/1) mask, and apply it as z·f'(z), so
  the backward pass reuses the mask;
- sigmoid + cross-entropy: delta = (sigmoid(z) - y)/B = (tanh(z/2) - (2y - 1))·(0.5/B),
  with the targets stored as 2y - 1, saving two calls;
- plain SGD folds the learning rate into the output delta's scale, so the
  gradient buffer holds lr·g and the update is a single subtraction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.nn.activations import ACTIVATIONS, LEAKY_SLOPE, Op, get_activation

Array = NDArray[np.floating]


def run(ops: Sequence[Op]) -> None:
    """Execute a compiled op list."""
    for f, args in ops:
        f(*args)


@dataclass
class Consts:
    """0-d arrays in the network's dtype (faster operands than Python floats)."""

    dtype: np.dtype[Any]
    zero: Array = field(init=False)
    half: Array = field(init=False)
    one: Array = field(init=False)
    slope: Array = field(init=False)
    one_minus_slope: Array = field(init=False)

    def __post_init__(self) -> None:
        self.zero = self.scalar(0.0)
        self.half = self.scalar(0.5)
        self.one = self.scalar(1.0)
        self.slope = self.scalar(LEAKY_SLOPE)
        self.one_minus_slope = self.scalar(1.0 - LEAKY_SLOPE)

    def scalar(self, value: float) -> Array:
        return np.array(value, dtype=self.dtype)


def activation_ops(name: str, z: Array, tmp: Array, c: Consts) -> list[Op]:
    """z <- f(z) in place (tmp: scratch of z's shape), as the activation registry
    compiles it. Output ones include softmax, which normalises each column."""
    return get_activation(name).ops(z, tmp, c)


def mul_derivative_ops(name: str, a: Array, delta: Array, tmp: Array, c: Consts) -> list[Op]:
    """delta <- delta · f'(z), from the activation a = f(z) (softmax: its Jacobian)."""
    return get_activation(name).dops(a, delta, delta, tmp, c)


def derivative_ops(name: str, a: Array, src: Array, dst: Array, tmp: Array, c: Consts) -> list[Op]:
    """dst <- src · f'(z) for an element-wise f (dst may be src), from a = f(z) as above."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown element-wise activation {name!r}")
    return ACTIVATIONS[name].dops(a, src, dst, tmp, c)


@dataclass
class Buffers:
    """Preallocated arrays of one batch size B: per layer l, (n_out_l, B).

    With biases, each hidden layer's activations carry an extra last row of ones
    (``inputs``), the next layer's input: a bias is then one more column of its
    layer's weight block, added by the forward product and differentiated by the
    weight-gradient product, with no broadcast add and no reduction.
    """

    zs: list[Array]  # pre-activations, overwritten in place by the activations
    inputs: list[Array]  # zs[l] plus the row of ones (or zs[l] itself without biases)
    deltas: list[Array]
    tmps: list[Array]
    errors: list[Array]  # weights_only's e per layer (n_l, B); empty for the chain rule
    scale: Array  # 0-d: dE/da factor of the output delta (1/B or 2/(B n_out), times lr if folded)
    base_scale: float


def make_buffers(
    batch: int,
    sizes: Sequence[int],
    dtype: np.dtype[Any],
    base: float,
    hidden: str,
    *,
    bias: bool,
    errors: bool = False,
) -> Buffers:
    """Buffers for batch size ``batch`` and layer widths ``sizes``.

    Memory stays near one (width, B) array per layer (full-batch training on big
    data is otherwise the largest allocation): deltas alternate between two
    shared arrays (layer l's delta is read while l-1's is written, so they never
    alias), and the tmps share one scratch array unless the hidden activation
    keeps its derivative mask in them between the forward and backward passes.
    With ``errors`` (weights_only), the errors e alternate between two more arrays.
    """
    last = len(sizes) - 1
    inputs = [np.empty((s + (bias and i < last), batch), dtype=dtype) for i, s in enumerate(sizes)]
    zs = [full[:s] for full, s in zip(inputs, sizes, strict=True)]
    for full, s in zip(inputs[:last], sizes, strict=False):
        full[s:] = 1
    widest = batch * max(sizes)
    ping_pong = (np.empty(widest, dtype=dtype), np.empty(widest, dtype=dtype))
    deltas = [ping_pong[(last - i) % 2][: batch * s].reshape(s, batch) for i, s in enumerate(sizes)]
    errs: list[Array] = []
    if errors:
        pair = (np.empty(widest, dtype=dtype), np.empty(widest, dtype=dtype))
        errs = [pair[(last - i) % 2][: batch * s].reshape(s, batch) for i, s in enumerate(sizes)]
    scratch = np.empty(widest, dtype=dtype)
    keeps_mask = hidden in ("relu", "leaky_relu")
    tmps = [
        np.empty_like(z) if keeps_mask and i < last else scratch[: z.size].reshape(z.shape)
        for i, z in enumerate(zs)
    ]
    return Buffers(
        zs=zs,
        inputs=inputs,
        deltas=deltas,
        tmps=tmps,
        errors=errs,
        scale=np.array(base, dtype=dtype),
        base_scale=base,
    )


@dataclass
class Layers:
    """What the programs bind, per layer: the weight block (n_out, n_in), or
    (n_out, n_in + 1) with the bias as its last column; the weights alone (a view
    of it); the gradient block of the same shape."""

    blocks: list[Array]
    weights: list[Array]
    grad_blocks: list[Array]
    hidden: str
    output: str


def forward_ops(x: Array, layers: Layers, buf: Buffers, c: Consts, *, final: bool) -> list[Op]:
    """Forward pass of x (n_in [+ 1 row of ones with biases], B) into buf.zs; with
    ``final`` the output activation is applied too."""
    ops: list[Op] = []
    a = x
    last = len(layers.blocks) - 1
    for layer, block in enumerate(layers.blocks):
        z = buf.zs[layer]
        ops.append((np.matmul, (block, a, z)))
        if layer < last:
            ops += activation_ops(layers.hidden, z, buf.tmps[layer], c)
        elif final:
            ops += activation_ops(layers.output, z, buf.tmps[layer], c)
        a = buf.inputs[layer]
    return ops


def step_ops(
    x: Array,
    y: Array,
    layers: Layers,
    buf: Buffers,
    c: Consts,
    fused: bool,
    weights_only: bool = False,
) -> list[Op]:
    """Forward and backward of one batch into the gradient blocks (batch-mean loss).

    x is (n_in [+ 1 row of ones with biases], B), any strides (the trainer passes
    a transposed view of row-major samples), and ``y`` (n_out, B), the dense
    target (stored as 2y - 1 for fused sigmoid + cross-entropy). ``weights_only``
    (mse, not fused; ``buf`` made with ``errors``) compiles the article's shortcut
    instead of the chain rule: see ``weights_only_backward_ops``.
    """
    last = len(layers.blocks) - 1
    z = buf.zs[last]
    delta = buf.deltas[last]
    ops = forward_ops(x, layers, buf, c, final=False)
    if weights_only:
        return ops + weights_only_backward_ops(x, y, layers, buf, c)
    if fused and layers.output == "sigmoid":
        ops += [
            (np.multiply, (z, c.half, z)),
            (np.tanh, (z, z)),
            (np.subtract, (z, y, delta)),
            (np.multiply, (delta, buf.scale, delta)),
        ]
    else:
        ops += activation_ops(layers.output, z, buf.tmps[last], c)
        ops += [(np.subtract, (z, y, delta)), (np.multiply, (delta, buf.scale, delta))]
        if not fused:  # mse: chain through the output activation
            ops += mul_derivative_ops(layers.output, z, delta, buf.tmps[last], c)
    for layer in range(last, -1, -1):
        a_prev = x if layer == 0 else buf.inputs[layer - 1]
        # [dE/dW | dE/db] = delta · [a_prev; 1]ᵀ
        ops.append((np.matmul, (delta, a_prev.T, layers.grad_blocks[layer])))
        if layer > 0:
            prev = buf.deltas[layer - 1]
            ops.append((np.matmul, (layers.weights[layer].T, delta, prev)))
            ops += mul_derivative_ops(
                layers.hidden, buf.zs[layer - 1], prev, buf.tmps[layer - 1], c
            )
            delta = prev
    return ops


def weights_only_backward_ops(
    x: Array, y: Array, layers: Layers, buf: Buffers, c: Consts
) -> list[Op]:
    """The backward pass of API.md's "article's shortcut", after the forward pass.

    e_L = dE/da_L (mse: (a - y)·scale), e_l = W_(l+1)ᵀ e_(l+1) with no derivative
    factor carried back, and every layer's delta_l = e_l ⊙ f'(z_l) feeds the
    gradient-block product as in the chain rule. e and delta live in separate
    buffers (delta_l is made from e_l, which e_(l-1) still needs).
    """
    last = len(layers.blocks) - 1
    z, delta, err = buf.zs[last], buf.deltas[last], buf.errors[last]
    ops = activation_ops(layers.output, z, buf.tmps[last], c)
    ops += [(np.subtract, (z, y, err)), (np.multiply, (err, buf.scale, err))]
    ops += derivative_ops(layers.output, z, err, delta, buf.tmps[last], c)
    for layer in range(last, -1, -1):
        a_prev = x if layer == 0 else buf.inputs[layer - 1]
        ops.append((np.matmul, (delta, a_prev.T, layers.grad_blocks[layer])))
        if layer > 0:
            prev_err, prev = buf.errors[layer - 1], buf.deltas[layer - 1]
            ops.append((np.matmul, (layers.weights[layer].T, err, prev_err)))
            ops += derivative_ops(
                layers.hidden, buf.zs[layer - 1], prev_err, prev, buf.tmps[layer - 1], c
            )
            err, delta = prev_err, prev
    return ops

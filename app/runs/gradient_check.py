# ruff: noqa: RUF002 -- docstrings use real math typography (minus, ∂)
"""The inspector's gradient check (API.md v1.1): backprop against central differences.

For each layer, the (up to) ``PER_LAYER`` weights with the largest |∂E/∂W| are
checked: ``backprop`` is the chain-rule gradient and ``numerical`` the central
difference (E(w+h) − E(w−h)) / 2h with h = 1e-6·max(1, |w|), both of the batch's
mean loss without l1/l2, both in float64 from the run's weights (cast exactly),
so the check tests the math and not float32 rounding.

The network code in ``app.nn`` does all the math (``MLP.backward``,
``MLP.forward``, ``get_activation``, ``loss_value``). Rows go in chunks (bounded
memory, a batch can be 80,000 rows); within a chunk the forward trace is
computed once and each perturbed loss re-runs only what one weight changes:
its unit's column of z, the next layer by a rank-one update, then the rest of
the network with ``MLP.forward``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from app.nn.activations import get_activation
from app.nn.losses import loss_value
from app.nn.network import MLP

PER_LAYER = 8
STEP = 1e-6  # h = STEP·max(1, |w|)
FLOOR = 1e-12  # the relative error's denominator never drops below this
CHUNK_VALUES = 1 << 21  # float64 values per chunk of the forward trace (~16 MB)


@dataclass(frozen=True)
class CheckedWeight:
    """One checked weight: W⁽ˡ⁾[row, col] (layer 1-based, row/col 0-based)."""

    layer: int
    row: int
    col: int
    backprop: float | None
    numerical: float | None
    relative_error: float | None

    def public(self) -> dict[str, float | int | None]:
        return asdict(self)


def relative_error(g: float, n: float) -> float:
    """|g − n| / max(|g|, |n|, 1e-12)."""
    return abs(g - n) / max(abs(g), abs(n), FLOOR)


def _tail(net: MLP, first: int) -> MLP | None:
    """Layers ``first``… of ``net`` as a network of their own (None when none are left)."""
    if first >= net.n_layers:
        return None
    tail = MLP(
        net.layer_sizes[first:],
        activation=net.activation,
        output_activation=net.output_activation,
        use_bias=net.use_bias,
        dtype=np.float64,
    )
    for k, w in enumerate(tail.weights):
        w[...] = net.weights[first + k]
        if tail.biases is not None and net.biases is not None:
            tail.biases[k][...] = net.biases[first + k]
    return tail


def _chunks(rows: int, sizes: list[int]) -> list[tuple[int, int]]:
    step = max(1, CHUNK_VALUES // (2 * sum(sizes)))
    return [(lo, min(lo + step, rows)) for lo in range(0, rows, step)]


def _backprop(net: MLP, x: np.ndarray, y: np.ndarray, loss: str) -> list[np.ndarray]:
    """∂E/∂W of the batch mean, layer by layer, summed over chunks weighted by their share."""
    rows = x.shape[0]
    grads = [np.zeros_like(w) for w in net.weights]
    for lo, hi in _chunks(rows, net.layer_sizes):
        g = net.backward(x[lo:hi], y[lo:hi], loss)
        for total, part in zip(grads, g.nabla_w, strict=True):
            total += part * ((hi - lo) / rows)
    return grads


def _perturbed_output(
    net: MLP,
    tails: list[MLP | None],
    zs: list[np.ndarray],
    acts: list[np.ndarray],
    where: tuple[int, int, int],
    change: float,
) -> np.ndarray:
    """The network's output on this chunk with W[layer][row, col] moved by ``change``."""
    layer, row, col = where
    last = net.n_layers - 1
    z = zs[layer].copy() if layer == last else zs[layer][:, row : row + 1].copy()
    target_col = z[:, row] if layer == last else z[:, 0]
    target_col += change * acts[layer][:, col]
    if layer == last:
        return get_activation(net.output_activation).f(z, None)
    new_a = get_activation(net.activation).f(z, None)[:, 0]
    z_next = zs[layer + 1] + np.outer(
        new_a - acts[layer + 1][:, row], net.weights[layer + 1][:, row]
    )
    name = net.output_activation if layer + 1 == last else net.activation
    a_next = get_activation(name).f(z_next, None)
    tail = tails[layer + 2]
    return a_next if tail is None else tail.forward(a_next)


def gradient_check(
    net: MLP, x: np.ndarray, y: np.ndarray, loss: str, per_layer: int = PER_LAYER
) -> list[CheckedWeight]:
    """Check ``per_layer`` weights per layer of ``net`` on the batch x (n, n_in), y (n, n_out).

    ``net`` may be float32: the check runs on a float64 copy. Returns the checked
    weights layer by layer, largest |backprop| first (ties in row-major order).
    """
    net = net.copy(np.float64)  # float32 weights cast exactly
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    rows = x.shape[0]
    with np.errstate(all="ignore"):
        grads = _backprop(net, x, y, loss)
        picked: list[tuple[int, int, int]] = []
        for layer, g in enumerate(grads):
            order = np.argsort(-np.abs(np.nan_to_num(g, nan=0.0)).ravel(), kind="stable")
            cols = g.shape[1]
            picked += [(layer, int(k) // cols, int(k) % cols) for k in order[:per_layer]]
        moves = []
        for layer, row, col in picked:
            w = float(net.weights[layer][row, col])
            h = STEP * max(1.0, abs(w))
            moves.append(((w + h) - w, (w - h) - w, h))
        tails = [_tail(net, first) for first in range(net.n_layers + 2)]
        diffs = np.zeros(len(picked))
        for lo, hi in _chunks(rows, net.layer_sizes):
            zs, acts = net.forward_trace(x[lo:hi])
            target, share = y[lo:hi], (hi - lo) / rows
            for k, (where, (up, down, _)) in enumerate(zip(picked, moves, strict=True)):
                e_up = loss_value(loss, _perturbed_output(net, tails, zs, acts, where, up), target)
                e_down = loss_value(
                    loss, _perturbed_output(net, tails, zs, acts, where, down), target
                )
                diffs[k] += (e_up - e_down) * share
    out = []
    for (layer, row, col), (_, _, h), diff in zip(picked, moves, diffs, strict=True):
        bp, n = float(grads[layer][row, col]), float(diff / (2 * h))
        r = relative_error(bp, n) if math.isfinite(bp) and math.isfinite(n) else math.nan
        out.append(CheckedWeight(layer + 1, row, col, _finite(bp), _finite(n), _finite(r)))
    return out


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None

# ruff: noqa: RUF002 -- UI text uses real typography (times sign, en dash, minus)
"""Evaluate a snapshot of a network's weights on many inputs (for neuron maps and output views).

The UI draws from the weights the run streams (plain arrays), not from the
trainer object that lives in a worker process, so it needs its own forward
pass; the activation functions come from ``app.nn`` so the maps are exactly
what the network computes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.nn.activations import get_activation
from app.nn.features import feature_matrix


@dataclass(frozen=True)
class Layer:
    """One layer's parameters: weights (n_out, n_in), biases (n_out,) or None."""

    weights: np.ndarray
    biases: np.ndarray | None


def normalise_layers(raw: Any) -> list[Layer]:
    """Accept the shapes weights travel in (API ``layers`` dicts, (W, b) pairs, a /weights body).

    Returns [] for None (no weights yet).
    """
    if raw is None:
        return []
    if isinstance(raw, Mapping) and "layers" in raw:
        raw = raw["layers"]
    layers: list[Layer] = []
    for item in raw:
        if isinstance(item, Mapping):
            w, b = item.get("weights"), item.get("biases")
        elif isinstance(item, Layer):
            w, b = item.weights, item.biases
        else:
            w, b = item[0], item[1]
        wa = np.asarray(w, dtype=np.float64)
        if wa.ndim == 1:
            wa = wa[None, :]
        ba = None if b is None else np.asarray(b, dtype=np.float64).ravel()
        layers.append(Layer(wa, ba))
    return layers


def network_input(x: np.ndarray, features: Sequence[str] | None) -> np.ndarray:
    """What the network's first layer sees for raw inputs x (n, n_raw).

    With ``features`` (a run's ``config.features``; x is then (n, 2)) the
    columns are those features of x, in that order; without, x itself.
    """
    x = np.asarray(x, dtype=np.float64)
    return x if features is None else feature_matrix(x, list(features))


def forward_trace(
    layers: Sequence[Layer],
    x: np.ndarray,
    activation: str,
    output_activation: str,
    features: Sequence[str] | None = None,
) -> list[np.ndarray]:
    """Activations of every layer for raw inputs x (n, n_raw): [x', a1, …, a_L], each (n, units).

    x' is ``network_input(x, features)``: the network's inputs. Hidden layers use
    ``activation``, the last one ``output_activation``. Non-finite weights
    propagate as NaN (the views draw them grey).
    """
    acts = [network_input(x, features)]
    a = acts[0]
    last = len(layers) - 1
    with np.errstate(all="ignore"):
        for i, layer in enumerate(layers):
            z = a @ layer.weights.T
            if layer.biases is not None:
                z = z + layer.biases
            fn = get_activation(output_activation if i == last else activation)
            a = fn.f(z, None)
            acts.append(a)
    return acts


def plane_grid(bound: float, resolution: int) -> np.ndarray:
    """Points of a resolution × resolution grid over [-bound, bound]², row-major from the top.

    Returns (resolution², 2): row r has x2 = +bound … −bound (top to bottom, as
    on screen), column c has x1 = −bound … +bound, both at pixel centres.
    """
    centres = (np.arange(resolution) + 0.5) / resolution
    xs = -bound + 2 * bound * centres
    ys = bound - 2 * bound * centres
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)

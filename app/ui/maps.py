# ruff: noqa: RUF002 -- UI text uses real typography (times sign, en dash, minus)
"""Evaluate a snapshot of a network's weights on many inputs (for neuron maps and output views).

The UI draws from the weights the run streams (plain arrays), not from the
trainer object that lives in a worker process: it loads them into an
``app.nn`` MLP and uses that network's own forward pass, so the maps are
exactly what the network computes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.nn.features import feature_matrix
from app.nn.network import MLP


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
    x0 = network_input(x, features)
    sizes = [x0.shape[1], *(layer.weights.shape[0] for layer in layers)]
    use_bias = bool(layers) and layers[0].biases is not None
    # The network's own forward pass (app.nn), on a float64 copy of the weights shown.
    net = MLP(
        sizes,
        activation=activation,
        output_activation=output_activation,
        use_bias=use_bias,
        dtype=np.float64,
    )
    for i, layer in enumerate(layers):
        net.weights[i][...] = layer.weights
        if net.biases is not None and layer.biases is not None:
            net.biases[i][...] = layer.biases
    with np.errstate(all="ignore"):
        _, acts = net.forward_trace(x0)
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

# ruff: noqa: RUF001 -- UI text uses real typography (times sign)
"""Weight-matrix heatmaps of the live view (rows: a layer's neurons, columns: its inputs)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.ui import render
from app.ui.maps import Layer

MATRIX_MAX_CELLS = 96  # pool a weight matrix down to at most this many cells per side


@dataclass
class Matrix:
    index: int
    shape: str
    uri: str
    vmax: str
    delta_uri: str
    delta_vmax: str
    width: int
    height: int
    pooled: bool
    bias_uri: str


def pool_matrix(m: np.ndarray, max_cells: int = MATRIX_MAX_CELLS) -> np.ndarray:
    """Block-average a (rows, cols) matrix so neither side exceeds ``max_cells``."""
    rows, cols = m.shape
    fr, fc = max(1, -(-rows // max_cells)), max(1, -(-cols // max_cells))
    if fr == 1 and fc == 1:
        return m
    pr, pc = -(-rows // fr) * fr, -(-cols // fc) * fc
    padded = np.full((pr, pc), np.nan)
    padded[:rows, :cols] = m
    # An all-NaN block (a non-finite weight) stays NaN and is drawn grey.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(padded.reshape(pr // fr, fr, pc // fc, fc), axis=(1, 3))


def weight_matrices(layers: Sequence[Layer], previous: Sequence[Layer] | None) -> list[Matrix]:
    """One heatmap per layer (rows: the layer's neurons, columns: its inputs), plus Δ since the
    previous frame's weights."""
    result = []
    same = previous is not None and len(previous) == len(layers)
    for li, layer in enumerate(layers):
        w = layer.weights
        pooled = pool_matrix(w)
        uri, vmax = render.heatmap_uri(pooled)
        if same and previous is not None and previous[li].weights.shape == w.shape:
            delta = pool_matrix(w - previous[li].weights)
        else:
            delta = np.zeros_like(pooled)
        delta_uri, dmax = render.heatmap_uri(delta)
        if not np.any(delta):
            dmax = 0.0
        bias_uri = ""
        if layer.biases is not None:
            bias_uri, _ = render.heatmap_uri(pool_matrix(layer.biases[:, None]), vmax)
        rows, cols = pooled.shape
        cell = max(2, min(14, 180 // max(rows, cols)))
        result.append(
            Matrix(
                li + 1,
                f"{w.shape[0]}×{w.shape[1]}",
                uri,
                render.format_number(vmax),
                delta_uri,
                render.format_number(dmax),
                cols * cell,
                rows * cell,
                pooled.shape != w.shape,
                bias_uri,
            )
        )
    return result

# ruff: noqa: RUF001 -- UI text uses real typography (times sign, en dash, minus)
"""Network diagram and weight-matrix heatmaps: geometry and images for the templates."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from app.ui import render
from app.ui.maps import Layer

MAX_SHOWN = 10  # neurons drawn per layer; the rest are summarised as "+ n more"
NEURON = 30  # px, side of a neuron's square
PITCH = 40  # px between neuron centres
CURVE_POINTS = 16  # points of a neuron's curve for 1-D inputs
MAP_BUDGET = 1e7  # multiply-adds per frame for all neuron maps (fewer grid points for big nets)
MAP_RES = 18  # px of each neuron's map image (scaled up smoothly by the browser)
MATRIX_MAX_CELLS = 96  # pool a weight matrix down to at most this many cells per side
SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


@dataclass
class Neuron:
    x: float
    y: float
    image: str  # PNG data URI of the neuron's output over the input plane, or ""
    curve: str  # 1-D inputs: SVG path of the neuron's output over the input range, or ""
    fill: str
    title: str
    bias_fill: str | None
    bias_title: str


@dataclass
class Link:
    d: str
    color: str
    width: float
    title: str


@dataclass
class Diagram:
    width: int
    height: int
    size: int
    neurons: list[Neuron] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    labels: list[tuple[float, str]] = field(default_factory=list)  # (x, text) above each column
    more: list[tuple[float, float, str]] = field(default_factory=list)  # (x, y, "+ n more")
    names: list[tuple[float, float, str]] = field(default_factory=list)  # input names at the left


def shown(n: int) -> int:
    return min(n, MAX_SHOWN)


def network_diagram(
    layer_sizes: Sequence[int],
    layers: Sequence[Layer],
    maps: Sequence[np.ndarray] | None,
    activation: str,
    output_activation: str,
    width: int = 560,
    curves: Sequence[np.ndarray] | None = None,
) -> Diagram:
    """Columns of neurons, curved links coloured by sign and sized by |w|, biases as small squares.

    layers: per layer weights (n_out, n_in) and biases (n_out,) | None.
    maps: per layer (including the inputs) activations over a square grid (side ≤ MAP_RES),
    shape (side², units), already on [-1, 1]; None when inputs are not 2-D.
    curves: for 1-D inputs, per layer activations over the input range, (points, units)
    on [-1, 1]; each neuron then shows its output as a small curve.
    """
    n_cols = len(layer_sizes)
    tallest = max(shown(n) for n in layer_sizes)
    top = 34
    height = top + tallest * PITCH + 24
    margin = 40
    col_x = [
        margin + NEURON / 2 + i * (width - 2 * margin - NEURON) / max(n_cols - 1, 1)
        for i in range(n_cols)
    ]
    diagram = Diagram(width, height, NEURON)
    centres: list[list[float]] = []
    for li, n in enumerate(layer_sizes):
        k = shown(n)
        y0 = top + (tallest - k) * PITCH / 2 + PITCH / 2
        centres.append([y0 + j * PITCH for j in range(k)])
        kind = "input" if li == 0 else ("output" if li == n_cols - 1 else "hidden")
        noun = {"input": "input", "output": "output", "hidden": "neuron"}[kind]
        diagram.labels.append((col_x[li], f"{n} {noun}{'s' if n != 1 else ''}"))
        if n > k:
            diagram.more.append((col_x[li], centres[li][-1] + NEURON / 2 + 12, f"+ {n - k} more"))
    if layer_sizes and layer_sizes[0] <= 8:
        for j, y in enumerate(centres[0]):
            name = "x" + str(j + 1).translate(SUBSCRIPTS)
            diagram.names.append((col_x[0] - NEURON / 2 - 6, y + 4, name))
    have_weights = len(layers) == n_cols - 1
    # Links first so neurons are drawn over their ends.
    if have_weights:
        for li, layer in enumerate(layers):
            xa, xb = col_x[li] + NEURON / 2, col_x[li + 1] - NEURON / 2
            xm = (xa + xb) / 2
            for j, yb in enumerate(centres[li + 1]):
                for i, ya in enumerate(centres[li]):
                    w = float(layer.weights[j, i])
                    diagram.links.append(
                        Link(
                            f"M{xa:.0f} {ya:.0f}C{xm:.0f} {ya:.0f} {xm:.0f} {yb:.0f} "
                            f"{xb:.0f} {yb:.0f}",
                            render.diverging_hex(w, 1.0),
                            round(render.link_width(w), 1),
                            f"w{li + 1} {i + 1}→{j + 1}: {render.format_number(w)}",
                        )
                    )
    for li, ys in enumerate(centres):
        for j, y in enumerate(ys):
            image, curve = "", ""
            if maps is not None and li < len(maps):
                side = math.isqrt(maps[li].shape[0])
                unit = maps[li][:, j].reshape(side, side)
                image = render.png_data_uri(render.diverging_rgb(unit, 1.0, render.IMAGE_STEPS))
            elif curves is not None and li < len(curves):
                values = curves[li][:, j]
                px = np.linspace(
                    col_x[li] - NEURON / 2 + 2, col_x[li] + NEURON / 2 - 2, values.size
                )
                curve = render.svg_path(px, y - np.clip(values, -1, 1) * (NEURON / 2 - 3))
            bias_fill, bias_title = None, ""
            title = "input " + str(j + 1) if li == 0 else f"layer {li}, neuron {j + 1}"
            if li > 0 and have_weights:
                b = layers[li - 1].biases
                if b is not None:
                    bv = float(b[j])
                    bias_fill = render.diverging_hex(bv, 1.0)
                    bias_title = f"bias = {render.format_number(bv)}"
                    title += f" · {bias_title}"
            diagram.neurons.append(
                Neuron(
                    col_x[li], y, image, curve, bias_fill or "#e8eaeb", title, bias_fill, bias_title
                )
            )
    return diagram


def neuron_maps(
    acts: Sequence[np.ndarray], bound: float, activation: str, output_activation: str
) -> list[np.ndarray]:
    """Scale each layer's activations over the grid onto [-1, 1] for colouring.

    acts: [x, a1, …, a_L], each (points, units) (a MAP_RES² grid, or points along a
    1-D input); inputs are divided by ``bound``.
    Only the first MAX_SHOWN units of each layer are kept.
    """
    out = []
    last = len(acts) - 1
    for li, a in enumerate(acts):
        a = a[:, :MAX_SHOWN]
        if li == 0:
            out.append(a / bound)
            continue
        act = output_activation if li == last else activation
        cols = [render.activation_to_unit(a[:, j], act) for j in range(a.shape[1])]
        out.append(np.stack(cols, axis=1) if cols else a)
    return out


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

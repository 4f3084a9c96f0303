"""Network diagram: geometry, neuron maps, input features and the edit controls for the template."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from app.nn.features import FEATURE_LABELS, FEATURES, feature_matrix
from app.ui import render
from app.ui.maps import Layer, forward_trace, plane_grid

MAX_SHOWN = 10  # neurons drawn per layer; the rest are summarised as "+ n more"
NEURON = 30  # px, side of a neuron's square
PITCH = 40  # px between neuron centres
CURVE_POINTS = 16  # points of a neuron's curve for 1-D inputs
MAP_BUDGET = 1e7  # multiply-adds per frame for all neuron maps (fewer grid points for big nets)
MAP_RES = 18  # px of each neuron's map image (scaled up smoothly by the browser)
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
    key: str = ""  # "layer-index": stable across frames (hover preview, keyboard focus)
    bias_key: str = ""  # "layer.row" of its bias for the weight editor (layer 1-based)
    feature: str = ""  # input feature nodes: the feature's name
    active: bool = True  # input feature nodes: is it one of the network's inputs?
    toggle: str = ""  # input feature nodes: the features after a click, comma-separated


@dataclass
class Link:
    d: str
    color: str
    width: float
    title: str
    key: str = ""  # "layer.row.col" into that layer's W (layer 1-based) for the weight editor


@dataclass
class Head:
    """What stands above one column: its size and, over a hidden layer, its ± buttons."""

    x: float
    count: str  # "8"
    unit: str  # "neurons"
    layer: int = 0  # hidden layer number (1-based); 0 for the input and output columns
    plus: str = ""  # hidden_layers after "+", comma-separated
    minus: str = ""  # hidden_layers after "-"


@dataclass
class Diagram:
    width: int
    height: int
    size: float
    neurons: list[Neuron] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    heads: list[Head] = field(default_factory=list)
    more: list[tuple[float, float, str]] = field(default_factory=list)  # (x, y, "+ n more")
    # (x, y, text, active): input names at the left of the input column
    names: list[tuple[float, float, str, bool]] = field(default_factory=list)
    hidden_text: str = ""  # "2 hidden layers"
    add_layer: str | None = None  # hidden_layers after "+ layer"; None: hide the button
    remove_layer: str | None = None
    dense: bool = False  # many columns: the heads show numbers only


def shown(n: int) -> int:
    return min(n, MAX_SHOWN)


def _joined(sizes: Sequence[int | str]) -> str:
    return ",".join(str(n) for n in sizes)


def exact(value: float | np.floating) -> str:
    """A weight's shortest text that reads back exactly in its own dtype (a float32
    weight as "-1.0296623", not its float64 widening "-1.0296622514724731")."""
    return str(value) if isinstance(value, np.floating) else repr(float(value))


def toggled_features(active: Sequence[str], name: str) -> list[str]:
    """The features after clicking ``name``: added or removed, kept in FEATURES order."""
    chosen = set(active) ^ {name}
    return [f for f in FEATURES if f in chosen]


def structure_controls(diagram: Diagram, hidden: Sequence[int], col_x: Sequence[float]) -> None:
    """The ± buttons of the hidden layers (per column) and of the layer count.

    The targets are the hidden_layers a click asks for; the server's RunPatch
    decides whether they are allowed (one source for the limits), and says so.
    """
    for li in range(len(hidden)):
        plus, minus = list(hidden), list(hidden)
        plus[li] += 1
        minus[li] -= 1
        head = diagram.heads[li + 1]
        head.layer, head.plus, head.minus = li + 1, _joined(plus), _joined(minus)
    diagram.hidden_text = f"{len(hidden)} hidden layer{'' if len(hidden) == 1 else 's'}"
    diagram.add_layer = _joined([*hidden, hidden[-1] if hidden else 4])
    diagram.remove_layer = _joined(hidden[:-1]) if hidden else None
    diagram.dense = len(col_x) > 6


def network_diagram(
    layer_sizes: Sequence[int],
    layers: Sequence[Layer],
    maps: Sequence[np.ndarray] | None,
    activation: str,
    output_activation: str,
    width: int = 560,
    curves: Sequence[np.ndarray] | None = None,
    features: Sequence[str] | None = None,
) -> Diagram:
    """Columns of neurons, curved links coloured by sign and sized by |w|, biases as small squares.

    layers: per layer weights (n_out, n_in) and biases (n_out,) | None.
    maps: per column activations over a square grid (side ≤ MAP_RES), shape (side², units),
    already on [-1, 1]; None when inputs are not 2-D. With ``features`` (the network's
    input features, for 2-D data) the input column shows every one of FEATURES (maps[0]
    then has a column per FEATURES name): the active ones linked, the others greyed.
    curves: for 1-D inputs, per layer activations over the input range, (points, units)
    on [-1, 1]; each neuron then shows its output as a small curve.
    """
    drawn = [len(FEATURES) if features is not None else layer_sizes[0], *layer_sizes[1:]]
    n_cols = len(drawn)
    names = drawn[0] <= 8
    left, right = (72 if names else 24), 16
    spacing = (width - left - right - NEURON) / max(n_cols - 1, 1)
    size = round(min(NEURON, max(16.0, spacing * 0.55)), 1)
    pitch = size + 10
    tallest = max(shown(n) for n in drawn)
    top = 6
    more = any(n > MAX_SHOWN for n in drawn)
    height = int(top + tallest * pitch + (22 if more else 6))
    col_x = [
        left + size / 2 + i * (width - left - right - size) / max(n_cols - 1, 1)
        for i in range(n_cols)
    ]
    diagram = Diagram(width, height, size)
    centres: list[list[float]] = []
    for li, n in enumerate(drawn):
        k = shown(n)
        y0 = top + (tallest - k) * pitch / 2 + pitch / 2
        centres.append([y0 + j * pitch for j in range(k)])
        kind = "input" if li == 0 else ("output" if li == n_cols - 1 else "hidden")
        noun = {"input": "input", "output": "output", "hidden": "neuron"}[kind]
        if kind == "input" and features is not None:
            noun = "feature"
            n = len(features)
        diagram.heads.append(Head(col_x[li], f"{n:,}", f"{noun}{'s' if n != 1 else ''}"))
        if drawn[li] > k:
            diagram.more.append(
                (col_x[li], centres[li][-1] + size / 2 + 12, f"+ {drawn[li] - k:,} more")
            )
    structure_controls(diagram, list(layer_sizes[1:-1]), col_x)
    if names:
        for j, y in enumerate(centres[0]):
            on = features is None or FEATURES[j] in features
            text = (
                FEATURE_LABELS[FEATURES[j]]
                if features is not None
                else "x" + str(j + 1).translate(SUBSCRIPTS)
            )
            diagram.names.append((col_x[0] - size / 2 - 6, y, text, on))
    # Row of the input column's node for each of the network's inputs.
    input_rows = (
        [FEATURES.index(f) for f in features]
        if features is not None
        else list(range(shown(drawn[0])))
    )
    if len(layers) == n_cols - 1:
        _links(diagram, layers, col_x, centres, input_rows)
    _neurons(diagram, layers, maps, curves, col_x, centres, features)
    return diagram


def _links(
    diagram: Diagram,
    layers: Sequence[Layer],
    col_x: Sequence[float],
    centres: Sequence[Sequence[float]],
    input_rows: Sequence[int],
) -> None:
    """Links first, so neurons are drawn over their ends. Titles carry the exact value."""
    h = diagram.size / 2
    for li, layer in enumerate(layers):
        xa, xb = col_x[li] + h, col_x[li + 1] - h
        xm = (xa + xb) / 2
        rows = input_rows if li == 0 else range(len(centres[li]))
        for j, yb in enumerate(centres[li + 1]):
            for i, row in enumerate(rows):
                if i >= MAX_SHOWN:
                    break
                ya = centres[li][row]
                w = float(layer.weights[j, i])
                diagram.links.append(
                    Link(
                        f"M{xa:.0f} {ya:.0f}C{xm:.0f} {ya:.0f} {xm:.0f} {yb:.0f} {xb:.0f} {yb:.0f}",
                        render.diverging_hex(w, 1.0),
                        round(render.link_width(w), 1),
                        # The exact value; where it goes is the popover's (bytes per frame).
                        f"w = {exact(layer.weights[j, i])}",
                        f"{li + 1}.{j}.{i}",
                    )
                )


def _neurons(
    diagram: Diagram,
    layers: Sequence[Layer],
    maps: Sequence[np.ndarray] | None,
    curves: Sequence[np.ndarray] | None,
    col_x: Sequence[float],
    centres: Sequence[Sequence[float]],
    features: Sequence[str] | None,
) -> None:
    h = diagram.size / 2
    last = len(centres) - 1
    have_weights = len(layers) == last
    for li, ys in enumerate(centres):
        for j, y in enumerate(ys):
            image, curve = "", ""
            if maps is not None and li < len(maps):
                side = math.isqrt(maps[li].shape[0])
                unit = maps[li][:, j].reshape(side, side)
                image = render.png_data_uri(render.diverging_rgb(unit, 1.0, render.IMAGE_STEPS))
            elif curves is not None and li < len(curves):
                values = curves[li][:, j]
                px = np.linspace(col_x[li] - h + 2, col_x[li] + h - 2, values.size)
                curve = render.svg_path(px, y - np.clip(values, -1, 1) * (h - 3))
            title = (
                f"input {j + 1}"
                if li == 0
                else (f"output {j + 1}" if li == last else f"layer {li}, neuron {j + 1}")
            )
            neuron = Neuron(col_x[li], y, image, curve, "#e8eaeb", title, None, "", f"{li}-{j}")
            if li == 0 and features is not None:
                name = FEATURES[j]
                neuron.feature, neuron.active = name, name in features
                neuron.toggle = _joined(toggled_features(features, name))
                verb = "click to remove it" if neuron.active else "click to add it"
                state = "an input" if neuron.active else "not used"
                neuron.title = f"{FEATURE_LABELS[name]}: {state} ({verb})"
            b = layers[li - 1].biases if li > 0 and have_weights else None
            if b is not None:
                bv = float(b[j])
                neuron.bias_fill = neuron.fill = render.diverging_hex(bv, 1.0)
                neuron.bias_title = f"b = {exact(b[j])} (bias of {title})"
                neuron.bias_key = f"{li}.{j}"
                neuron.title += f" · b = {exact(b[j])}"
            diagram.neurons.append(neuron)


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


def feature_maps(grid: np.ndarray) -> np.ndarray:
    """Every one of FEATURES over the grid (points, 2) as (points, 7) on [-1, 1].

    Each feature is divided by its largest |value| on the grid (as an unbounded
    activation is), so all use the neuron maps' full colour scale.
    """
    values = feature_matrix(grid, FEATURES)
    return np.stack(
        [render.activation_to_unit(values[:, k], "linear") for k in range(values.shape[1])],
        axis=1,
    )


def plane_maps(
    layers: Sequence[Layer],
    bound: float,
    activation: str,
    output_activation: str,
    features: Sequence[str] | None,
) -> list[np.ndarray]:
    """The maps of every column for 2-D inputs: [inputs, layer 1, …, output], each (side², units).

    The inputs are all of FEATURES (see feature_maps); the network is evaluated on the
    grid's ``features`` (None: the raw x1, x2), so each map is what that neuron computes.
    """
    n_params = sum(layer.weights.size for layer in layers)
    res = render.grid_resolution(n_params, MAP_BUDGET, 6, MAP_RES)
    grid = plane_grid(bound, res)
    inputs = feature_maps(grid)
    if not layers:
        return [inputs]
    acts = forward_trace(layers, grid, activation, output_activation, features)
    return [inputs, *neuron_maps(acts, bound, activation, output_activation)[1:]]

"""The output view: decision map (2-D inputs), prediction curve (1-D), predicted-vs-true (more).

Split into a static part computed once per run (the data points, the plot's
domain) and a dynamic part recomputed per frame (the network's outputs), so a
frame never re-sends hundreds of unchanged points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.ui import render
from app.ui.maps import Layer, forward_trace, plane_grid

SIZE = 300  # px, side of the output plot
OUTPUT_RES = 50  # px of the decision-map image (the browser smooths it up to SIZE)
MIN_OUTPUT_RES = 16
GRID_BUDGET = 3e7  # multiply-adds per frame for the output map (≈ 10 ms of NumPy)
MAX_POINTS = 600  # data points drawn per split
CURVE_POINTS = 200
SCATTER_ROWS = 2000  # samples a predicted-vs-true view or confusion matrix evaluates per frame
# The map is paler than the scale's ends so the points drawn over it (full colour) stand out,
# as in Playground.
MAP_LIGHTEN = 0.35


@dataclass
class Point:
    cx: float
    cy: float
    fill: str
    title: str


@dataclass
class Axis:
    ticks: list[tuple[float, str]] = field(default_factory=list)


def axis_ticks(domain: tuple[float, float], flip: bool) -> list[tuple[float, str]]:
    """(pixel, label) ticks along one side of the SIZE-px plot, none right at its edges."""
    out = []
    for t in render.nice_ticks(*domain, 5):
        pos = float(render.linear_scale(t, domain, (SIZE, 0) if flip else (0, SIZE)))
        if 8 <= pos <= SIZE - 8:
            out.append((pos, render.format_tick(t)))
    return out


@dataclass
class RunData:
    """What the output view needs about a run's data; built once per run."""

    task: str
    kind: str  # "plane" | "curve" | "scatter"
    n_inputs: int
    n_outputs: int
    n_classes: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    bound: float = 1.0  # plane: the plot spans [-bound, bound]^2
    x_domain: tuple[float, float] = (0.0, 1.0)
    y_domain: tuple[float, float] = (0.0, 1.0)
    y_vmax: float = 1.0  # regression targets' colour scale
    train_points: list[Point] = field(default_factory=list)
    test_points: list[Point] = field(default_factory=list)
    x_axis: Axis = field(default_factory=Axis)
    y_axis: Axis = field(default_factory=Axis)
    series: list[tuple[str, str]] = field(default_factory=list)  # scatter: (colour, output name)


def _split(
    raw: Mapping[str, Any], task: str, n_in: int, n_out: int
) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(raw.get("x", []), dtype=np.float64)
    y_raw = raw.get("y", [])
    if task == "classification":
        y = np.asarray(y_raw, dtype=np.int64).ravel()
    else:
        y = np.asarray(y_raw, dtype=np.float64)
        if y.ndim == 1:
            y = y[:, None] if y.size else y.reshape(0, n_out)
    if x.ndim == 1:
        # An empty split (test_fraction 0) keeps the inputs' width: it is concatenated.
        x = x.reshape(-1, 1) if x.size else x.reshape(0, n_in)
    return x, y


def run_data(data: Mapping[str, Any], task: str, layer_sizes: Sequence[int]) -> RunData:
    """Build the static part from a ``/data``-shaped dict {"train": {"x", "y"}, "test": {…}}."""
    # The raw inputs decide the view (with input features the network has more inputs).
    train_x = data.get("train", {}).get("x") or [[]]
    n_in = len(train_x[0]) or int(layer_sizes[0])
    n_out = int(layer_sizes[-1])
    x_tr, y_tr = _split(data.get("train", {}), task, n_in, n_out)
    x_te, y_te = _split(data.get("test", {}), task, n_in, n_out)
    n_classes = 0
    if task == "classification":
        labels = np.concatenate([y_tr, y_te])
        n_classes = max(2, int(labels.max()) + 1) if labels.size else 2
    kind = "plane" if n_in == 2 else ("curve" if n_in == 1 else "scatter")
    rd = RunData(task, kind, n_in, n_out, n_classes, x_tr, y_tr, x_te, y_te)
    if task == "regression":
        ys = np.concatenate([y_tr, y_te]).ravel()
        finite = np.abs(ys[np.isfinite(ys)])
        rd.y_vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    if kind == "plane":
        _plane_static(rd)
    elif kind == "curve":
        _curve_static(rd)
    else:
        _scatter_static(rd)
    _keep_only_what_frames_use(rd)
    return rd


def _keep_only_what_frames_use(rd: RunData) -> None:
    """Drop the samples the per-frame views never read (the state lives as long as a viewer).

    plane/curve frames need no samples (their points are drawn once), but for the
    confusion matrix beside a classification map; scatter frames and that matrix
    evaluate at most SCATTER_ROWS rows of the test set (or of the training set when
    there is no test set).
    """
    if rd.kind == "curve" or (rd.kind == "plane" and rd.task != "classification"):
        rd.x_train, rd.y_train = rd.x_train[:0], rd.y_train[:0]
        rd.x_test, rd.y_test = rd.x_test[:0], rd.y_test[:0]
        return
    if len(rd.x_test):
        idx = render.subsample_indices(len(rd.x_test), SCATTER_ROWS)
        rd.x_test, rd.y_test = rd.x_test[idx], rd.y_test[idx]
        rd.x_train, rd.y_train = rd.x_train[:0], rd.y_train[:0]
    else:
        idx = render.subsample_indices(len(rd.x_train), SCATTER_ROWS)
        rd.x_train, rd.y_train = rd.x_train[idx], rd.y_train[idx]


def _point_fill(rd: RunData, y: np.ndarray, i: int) -> tuple[str, str]:
    if rd.task == "classification":
        label = int(y[i])
        return render.CLASS_COLORS[label % len(render.CLASS_COLORS)], f"class {label}"
    v = float(y[i, 0])
    return render.diverging_hex(v, rd.y_vmax), f"y = {render.format_number(v)}"


def _plane_static(rd: RunData) -> None:
    xs = np.concatenate([rd.x_train, rd.x_test])
    finite = np.abs(xs[np.isfinite(xs)])
    top = float(finite.max()) * 1.05 if finite.size else 1.0
    rd.bound = render.nice_domain(0.0, max(top, 1e-6), 4)[1]
    dom = (-rd.bound, rd.bound)
    rd.x_axis.ticks = axis_ticks(dom, flip=False)
    rd.y_axis.ticks = axis_ticks(dom, flip=True)
    for x, y, out in (
        (rd.x_train, rd.y_train, rd.train_points),
        (rd.x_test, rd.y_test, rd.test_points),
    ):
        for i in render.subsample_indices(len(x), MAX_POINTS).tolist():
            cx = float(render.linear_scale(x[i, 0], dom, (0, SIZE)))
            cy = float(render.linear_scale(x[i, 1], dom, (SIZE, 0)))
            fill, title = _point_fill(rd, y, i)
            out.append(Point(round(cx, 1), round(cy, 1), fill, title))


def _as_rows(y: np.ndarray) -> np.ndarray:
    """Targets as float rows; zero rows (an empty test set) keep one column."""
    y = y.astype(np.float64)
    return y.reshape(len(y), -1) if y.size else y.reshape(len(y), 1)


def _curve_static(rd: RunData) -> None:
    xs = np.concatenate([rd.x_train, rd.x_test]).ravel()
    ys = np.concatenate([_as_rows(rd.y_train)[:, :1], _as_rows(rd.y_test)[:, :1]]).ravel()
    ext_x = render.finite_extent(xs) or (-1.0, 1.0)
    ext_y = render.finite_extent(ys) or (-1.0, 1.0)
    rd.x_domain = render.nice_domain(*ext_x, 5)
    pad = (ext_y[1] - ext_y[0]) * 0.1 or 0.5
    rd.y_domain = render.nice_domain(ext_y[0] - pad, ext_y[1] + pad, 5)
    rd.x_axis.ticks = axis_ticks(rd.x_domain, flip=False)
    rd.y_axis.ticks = axis_ticks(rd.y_domain, flip=True)
    for x, y, out, css in (
        (rd.x_train, rd.y_train, rd.train_points, "#0877bd"),
        (rd.x_test, rd.y_test, rd.test_points, "#f59322"),
    ):
        yv = _as_rows(y)
        for i in render.subsample_indices(len(x), MAX_POINTS).tolist():
            cx = float(render.linear_scale(x[i, 0], rd.x_domain, (0, SIZE)))
            cy = float(render.linear_scale(yv[i, 0], rd.y_domain, (SIZE, 0)))
            out.append(
                Point(
                    round(cx, 1),
                    round(cy, 1),
                    css,
                    f"x = {render.format_number(float(x[i, 0]))}, "
                    f"y = {render.format_number(float(yv[i, 0]))}",
                )
            )


def _scatter_static(rd: RunData) -> None:
    if rd.task == "regression":
        ys = np.concatenate([rd.y_train, rd.y_test]).ravel()
        ext = render.finite_extent(ys) or (-1.0, 1.0)
        rd.y_domain = rd.x_domain = render.nice_domain(*ext, 5)
        rd.x_axis.ticks = axis_ticks(rd.x_domain, flip=False)
        rd.y_axis.ticks = axis_ticks(rd.y_domain, flip=True)
        n = min(rd.n_outputs, len(render.CATEGORICAL))
        rd.series = [(render.CATEGORICAL[k], f"output {k + 1}") for k in range(n)]


@dataclass
class OutputFrame:
    """The per-frame part of the output view."""

    kind: str
    image: str = ""  # plane: continuous output map (PNG data URI)
    image_discrete: str = ""  # plane: thresholded map
    curve: str = ""  # curve: SVG path of the prediction
    points: list[Point] = field(default_factory=list)  # scatter (regression): predicted vs true
    confusion: list[list[int]] = field(default_factory=list)  # scatter (classification)


def output_frame(
    rd: RunData,
    layers: Sequence[Layer],
    activation: str,
    output_activation: str,
    features: Sequence[str] | None = None,
) -> OutputFrame:
    """Evaluate the current weights for the output view of ``rd.kind``.

    ``features``: the run's input features (2-D data), applied to the raw inputs.
    """
    frame = OutputFrame(rd.kind)
    if not layers:
        return frame
    if rd.kind == "plane":
        n_params = sum(la.weights.size for la in layers)
        res = render.grid_resolution(n_params, GRID_BUDGET, MIN_OUTPUT_RES, OUTPUT_RES)
        grid = plane_grid(rd.bound, res)
        out = forward_trace(layers, grid, activation, output_activation, features)[-1]
        cont, disc = (
            render.lighten(c, MAP_LIGHTEN) for c in plane_colours(rd, out, output_activation)
        )
        frame.image = render.png_data_uri(cont.reshape(res, res, 3))
        frame.image_discrete = render.png_data_uri(disc.reshape(res, res, 3))
    elif rd.kind == "curve":
        xs = np.linspace(*rd.x_domain, CURVE_POINTS)[:, None]
        out = forward_trace(layers, xs, activation, output_activation)[-1][:, 0]
        px = render.linear_scale(xs[:, 0], rd.x_domain, (0, SIZE))
        py = np.clip(render.linear_scale(out, rd.y_domain, (SIZE, 0)), -5, SIZE + 5)
        frame.curve = render.svg_path(px, py)
    elif rd.task == "regression":
        idx = render.subsample_indices(len(rd.x_test) or len(rd.x_train), 300)
        x, y = (rd.x_test, rd.y_test) if len(rd.x_test) else (rd.x_train, rd.y_train)
        pred = forward_trace(layers, x[idx], activation, output_activation)[-1]
        for k in range(min(pred.shape[1], len(render.CATEGORICAL))):
            colour = render.CATEGORICAL[k]
            for row, i in enumerate(idx.tolist()):
                cx = float(render.linear_scale(y[i, k], rd.x_domain, (0, SIZE)))
                cy = float(
                    np.clip(render.linear_scale(pred[row, k], rd.y_domain, (SIZE, 0)), -4, SIZE + 4)
                )
                frame.points.append(Point(round(cx, 1), round(cy, 1), colour, ""))
    else:
        frame.confusion = confusion_matrix(rd, layers, activation, output_activation, features)
    return frame


def confusion_matrix(
    rd: RunData,
    layers: Sequence[Layer],
    activation: str,
    output_activation: str,
    features: Sequence[str] | None = None,
) -> list[list[int]]:
    """Counts [true class][predicted class] on the test set (the training set when there is
    no test set); [] for regression or before there are weights."""
    if rd.task != "classification" or not layers:
        return []
    x, y = (rd.x_test, rd.y_test) if len(rd.x_test) else (rd.x_train, rd.y_train)
    pred = forward_trace(layers, x, activation, output_activation, features)[-1]
    labels = predicted_labels(pred)
    k = rd.n_classes
    conf = np.zeros((k, k), dtype=np.int64)
    np.add.at(conf, (np.clip(y, 0, k - 1), np.clip(labels, 0, k - 1)), 1)
    counts: list[list[int]] = conf.tolist()
    return counts


def predicted_labels(out: np.ndarray) -> np.ndarray:
    """API.md accuracy rule: argmax, or output ≥ 0.5 for a single output."""
    if out.shape[1] == 1:
        return (out[:, 0] >= 0.5).astype(np.int64)
    return np.argmax(np.nan_to_num(out, nan=-np.inf), axis=1)


def plane_colours(
    rd: RunData, out: np.ndarray, output_activation: str
) -> tuple[np.ndarray, np.ndarray]:
    """RGB (n, 3) for the continuous and the discretised output over the grid; out: (n, n_out)."""
    if rd.task == "regression":
        v = out[:, 0]
        return render.diverging_rgb(v, rd.y_vmax, 30), render.diverging_rgb(np.sign(v), 1.0)
    if out.shape[1] == 1:
        p = np.clip(out[:, 0], 0.0, 1.0)
        unit = 2.0 * p - 1.0
        return render.diverging_rgb(unit, 1.0, 30), render.diverging_rgb(
            np.where(p >= 0.5, 1.0, -1.0)
        )
    labels = predicted_labels(out)
    probs = out
    if output_activation != "softmax":
        probs = np.clip(out, 0.0, 1.0)
    k = out.shape[1]
    top = np.nan_to_num(probs.max(axis=1), nan=0.0)
    confidence = np.clip((top - 1.0 / k) / (1.0 - 1.0 / k), 0.0, 1.0) * 0.85 + 0.15
    return render.categorical_rgb(labels, confidence), render.categorical_rgb(labels)

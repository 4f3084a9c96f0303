"""The weight history page (/runs/{id}/history): scrub or play back a run's kept snapshots.

Each frame is drawn on the server from one kept snapshot (API.md v1.1 "Weight
history") with the live view's pure render functions: the network diagram with
its neuron maps, the output view, the weight matrices (Δ since the kept epoch
before) and the loss curve with a marker at that epoch. Below, per layer, the
weights' histograms over time (app.ui.histograms). Nothing is cached: a frame
is a handful of small NumPy evaluations.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.runs.errors import ProblemError
from app.ui import charts, diagram, histograms, matrices, render
from app.ui.maps import Layer, forward_trace, normalise_layers
from app.ui.outputview import OutputFrame, RunData, output_frame, run_data
from app.ui.views import best_mark

router = APIRouter(include_in_schema=False)

LARGE_PARAMS = 100_000  # over this, the histograms read fewer snapshots (each is a full copy)
LARGE_MAX_EPOCHS = 12


@dataclass
class LossMarker:
    """A vertical line at the shown epoch on the loss chart (same viewBox as the chart)."""

    x: float
    top: int
    bottom: int
    shown: bool


@dataclass
class HistoryFrame:
    epoch: int  # the kept epoch shown
    asked: int  # the epoch asked for (the shown one is the largest kept ≤ it)
    previous: int | None  # the kept epoch before (the matrices' Δ is since then)
    diagram: diagram.Diagram
    out: OutputFrame | None
    matrices: list[matrices.Matrix]
    chart: charts.Chart
    marker: LossMarker
    best: charts.PlacedMark | None  # early stopping's best epoch (of the whole history)
    train_loss: str
    test_loss: str


def kept_at_or_before(epochs: Sequence[int], epoch: int) -> int | None:
    """The largest of the ascending ``epochs`` that is ≤ ``epoch`` (None: none is)."""
    i = bisect.bisect_right(list(epochs), epoch)
    return epochs[i - 1] if i else None


def parse_epoch(raw: str | None) -> int | None:
    """The ``epoch`` query value: None when absent; ValueError in words when it is not an
    integer ≥ 0."""
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("epoch must be a whole number (0 or more)") from None
    if value < 0:
        raise ValueError("epoch must be 0 or more")
    return value


def loss_chart(metrics: Mapping[str, np.ndarray]) -> charts.Chart:
    """Train and test loss over the run's epochs (the live view's chart, without hover)."""
    series = [
        charts.SeriesIn("train", "train", metrics["train_loss"]),
        charts.SeriesIn("test", "test", metrics["test_loss"]),
    ]
    return charts.line_chart(metrics["epoch"], series, height=180, hover=False)


def loss_marker(chart: charts.Chart, epoch: int) -> LossMarker:
    """Where epoch sits on ``chart``'s x axis (clamped to the plot)."""
    x0, x1 = chart.x_domain
    x = float(render.linear_scale(float(epoch), (x0, x1), (chart.left, chart.right)))
    x = min(max(x, chart.left), chart.right)
    return LossMarker(round(x, 1), chart.top, chart.bottom, not chart.empty)


def best_placed(
    run: Mapping[str, Any], metrics: Mapping[str, np.ndarray], chart: charts.Chart
) -> charts.PlacedMark | None:
    """Early stopping's best epoch on the loss chart, as the live view marks it."""
    mark = best_mark(run, metrics)
    return None if mark is None or chart.empty else charts.place_mark(chart, mark)


def loss_at(metrics: Mapping[str, np.ndarray], epoch: int, name: str) -> str:
    epochs = metrics["epoch"]
    hit = np.flatnonzero(epochs == epoch)
    return render.format_number(float(metrics[name][hit[0]]), 4) if hit.size else "—"


def network_picture(
    run: Mapping[str, Any], layers: Sequence[Layer], rd: RunData | None
) -> diagram.Diagram:
    """The network diagram of ``layers`` with neuron maps (2-D data) or curves (1-D data)."""
    config = run.get("config", {})
    activation = str(config.get("activation", "tanh"))
    out_act = str(config.get("output_activation") or "linear")
    sizes = list(run.get("layer_sizes", []))
    features = config.get("features")
    maps = curves = None
    plane = rd is not None and rd.kind == "plane"
    if rd is not None and plane:
        maps = diagram.plane_maps(layers, rd.bound, activation, out_act, features)
    elif rd is not None and layers and sizes and sizes[0] == 1:
        lo, hi = rd.x_domain
        xs = np.linspace(lo, hi, diagram.CURVE_POINTS)[:, None]
        acts = forward_trace(layers, xs, activation, out_act)
        curves = diagram.neuron_maps(acts, max(abs(lo), abs(hi)) or 1.0, activation, out_act)
    shown = (features or ["x1", "x2"]) if plane else None
    return diagram.network_diagram(
        sizes, layers, maps, activation, out_act, curves=curves, features=shown
    )


def view_data(manager: Any, run: Mapping[str, Any]) -> RunData | None:
    try:
        return run_data(manager.data(run["id"]), str(run["task"]), run["layer_sizes"])
    except (ProblemError, ValueError):
        return None


def metric_columns(manager: Any, run_id: str) -> dict[str, np.ndarray]:
    """The run's metrics as float columns (NaN for none); copies, safe to keep."""
    cols = manager.hub(run_id).history.columns(0)
    out = {"epoch": np.array(cols["epoch"], dtype=np.int64)}
    for name in ("train_loss", "test_loss"):
        out[name] = np.array(cols[name], dtype=np.float64)
    return out


@dataclass
class FrameWeights:
    """The snapshots one frame is drawn from (read from the manager on the event loop)."""

    asked: int
    epoch: int
    layers: list[Layer]
    previous_epoch: int | None
    previous: list[Layer] | None


def frame_weights(manager: Any, run_id: str, kept: Sequence[int], asked: int) -> FrameWeights:
    """The largest kept epoch ≤ ``asked`` (the first kept one if none is) and the one before."""
    at = kept_at_or_before(kept, asked)
    snap = manager.weights(run_id, kept[0] if at is None else at)
    epoch = int(snap["epoch"])
    before = kept_at_or_before(kept, epoch - 1) if epoch > 0 else None
    previous = normalise_layers(manager.weights(run_id, before)) if before is not None else None
    return FrameWeights(asked, epoch, normalise_layers(snap), before, previous)


def history_frame(
    run: Mapping[str, Any],
    weights: FrameWeights,
    rd: RunData | None,
    metrics: Mapping[str, np.ndarray],
) -> HistoryFrame:
    """Draw one frame (pure: NumPy and the render functions only)."""
    config = run.get("config", {})
    activation = str(config.get("activation", "tanh"))
    out_act = str(config.get("output_activation") or "linear")
    layers = weights.layers
    out = output_frame(rd, layers, activation, out_act, config.get("features")) if rd else None
    chart = loss_chart(metrics)
    return HistoryFrame(
        epoch=weights.epoch,
        asked=weights.asked,
        previous=weights.previous_epoch,
        diagram=network_picture(run, layers, rd),
        out=out,
        matrices=matrices.weight_matrices(layers, weights.previous),
        chart=chart,
        marker=loss_marker(chart, weights.epoch),
        best=best_placed(run, metrics, chart),
        train_loss=loss_at(metrics, weights.epoch, "train_loss"),
        test_loss=loss_at(metrics, weights.epoch, "test_loss"),
    )


def histogram_epochs(run: Mapping[str, Any], kept: Sequence[int]) -> list[int]:
    """The kept epochs the histograms show: at most 40 (12 for a large net), evenly spread."""
    sizes = list(run.get("layer_sizes", []))
    n_params = sum(a * b for a, b in itertools.pairwise(sizes))
    limit = LARGE_MAX_EPOCHS if n_params > LARGE_PARAMS else histograms.MAX_EPOCHS
    return histograms.subsample_epochs(kept, limit)


def layer_histograms(
    epochs: Sequence[int], per_epoch: Sequence[Sequence[Layer]]
) -> list[histograms.HistogramStack]:
    """Per layer, the stacked histograms of its weights at ``epochs`` (per_epoch[k]: the
    layers at epochs[k])."""
    if not per_epoch:
        return []
    return [
        histograms.stacked_histogram(li + 1, epochs, [layers[li].weights for layers in per_epoch])
        for li in range(len(per_epoch[0]))
    ]


# ---------------------------------------------------------------- routes


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    templates = request.app.state.ui.templates
    return templates.TemplateResponse(request, name, context, status_code=status)  # type: ignore[no-any-return]


def _message(request: Request, text: str, status: int) -> HTMLResponse:
    return _page(request, "partials/control_message.html", {"text": text, "error": True}, status)


def _not_found(request: Request, message: str) -> HTMLResponse:
    context = {"title": "Not found", "active": "", "message": message}
    return _page(request, "pages/not_found.html", context, 404)


def _frame_inputs(
    manager: Any, run_id: str
) -> tuple[dict[str, Any], list[int], RunData | None, dict[str, np.ndarray]]:
    run = manager.get(run_id).public()
    kept = list(manager.snapshots(run_id)["epochs"])
    return run, kept, view_data(manager, run), metric_columns(manager, run_id)


async def _frame_at(
    manager: Any, run_id: str, asked: int | None
) -> tuple[dict[str, Any], list[int], RunData | None, HistoryFrame | None]:
    """The run, its kept epochs, its data and the frame at the largest kept epoch ≤
    `asked` (the last kept one for None; no frame when nothing is kept yet), drawn off
    the loop: one source for the history page, the live view's History card and the
    scrubber's fragment."""
    run, kept, rd, metrics = _frame_inputs(manager, run_id)
    if not kept:
        return run, kept, rd, None
    weights = frame_weights(manager, run_id, kept, kept[-1] if asked is None else asked)
    frame = await asyncio.to_thread(history_frame, run, weights, rd, metrics)
    return run, kept, rd, frame


def _stacks(
    manager: Any, run_id: str, run: Mapping[str, Any], kept: Sequence[int]
) -> list[histograms.HistogramStack]:
    """Read the histograms' snapshots and draw them (run in a thread: a big net's snapshots
    are large; the manager's reads are thread-safe, its store gives each thread a connection)."""
    picked = histogram_epochs(run, kept)
    per_epoch = [normalise_layers(manager.weights(run_id, e)) for e in picked]
    return layer_histograms(picked, per_epoch)


@router.get("/runs/{run_id}/history", response_class=HTMLResponse)
async def history_page(request: Request, run_id: str) -> HTMLResponse:
    manager = request.app.state.manager
    try:
        asked = parse_epoch(request.query_params.get("epoch"))
    except ValueError as exc:
        return _message(request, str(exc), 422)
    stacks: list[histograms.HistogramStack] = []
    try:
        run, kept, rd, frame = await _frame_at(manager, run_id, asked)
        if kept:
            stacks = await asyncio.to_thread(_stacks, manager, run_id, run, kept)
    except ProblemError as exc:  # no such run, or deleted or reset while we read it
        return _not_found(request, exc.detail)
    index = kept.index(frame.epoch) if frame is not None and frame.epoch in kept else 0
    context = {
        "title": f"History · {run['name']}",
        "active": "",
        "run": run,
        "kept": kept,
        "index": index,
        "frame": frame,
        "rd": rd,
        "stacks": stacks,
    }
    return _page(request, "pages/history.html", context)


@router.get("/ui/runs/{run_id}/history-panel", response_class=HTMLResponse)
async def history_panel(request: Request, run_id: str) -> HTMLResponse:
    """The scrubber on the live view itself (its History card, loaded when opened): the
    kept epoch's diagram, output, loss marked there and weight matrices, from the same
    frame the history page draws."""
    manager = request.app.state.manager
    try:
        run, kept, rd, frame = await _frame_at(manager, run_id, None)
    except ProblemError as exc:
        return _message(request, exc.detail, 404)
    context = {"run": run, "kept": kept, "index": len(kept) - 1, "frame": frame, "rd": rd}
    return _page(request, "partials/history_panel.html", context)


@router.get("/ui/runs/{run_id}/history", response_class=HTMLResponse)
async def history_fragment(request: Request, run_id: str) -> HTMLResponse:
    """The frame at ``?epoch=E`` (the largest kept epoch ≤ E) for the scrubber."""
    manager = request.app.state.manager
    try:
        asked = parse_epoch(request.query_params.get("epoch"))
    except ValueError as exc:
        return _message(request, str(exc), 422)
    try:
        run, _, rd, frame = await _frame_at(manager, run_id, asked)
    except ProblemError as exc:  # no such run, or deleted or reset while we read it
        return _message(request, exc.detail, exc.status_code)
    if frame is None:
        return _message(request, "This run has no kept weights yet.", 404)
    return _page(request, "partials/history_frame.html", {"frame": frame, "rd": rd, "run": run})

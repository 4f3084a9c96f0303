"""Data → template context for the live view's fragments and the other pages.

Everything here is synchronous and works on plain data (a public Run dict,
metrics columns, weight arrays, the run's data), so tests can feed it fakes
and the stream can render a frame once and share it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from jinja2 import Environment

from app.runs.controls import best_epoch
from app.runs.models import RunStatus
from app.ui import charts, diagram, losschart, matrices, render, settings
from app.ui.livechart import LiveCharts, LiveChartView
from app.ui.maps import Layer, forward_trace
from app.ui.outputview import RunData, confusion_matrix, output_frame

# Fragment name -> id of the container it fills (innerHTML); the page and the stream share these.
FRAGMENTS: dict[str, str] = {
    "controls": "controls",
    "stats": "stats",
    "loss": "loss-chart",
    "accuracy": "accuracy-chart",
    "network": "network",
    "output": "output-heatmap",
    "points": "output-points",
    "weights": "weights",
    "grads": "grad-norms",
    "settings": "live-settings",
    "summary": "run-summary",
    "confusion": "confusion",
}
# Sent only in a snapshot: they depend on the run's data, which never changes.
STATIC_FRAGMENTS = ("points",)
# Depend only on the weights (and the run's data): re-rendered only when new weights arrive.
WEIGHT_FRAGMENTS = ("network", "output", "weights", "confusion")
# Fragments whose charts grow by appending (livechart): fragment -> its chart ids.
LIVE_CHARTS: dict[str, tuple[str, ...]] = {
    "loss": ("loss-lin", "loss-log", "rate"),
    "accuracy": ("acc",),
}


@dataclass
class LiveInput:
    """Everything one frame of the live view is drawn from.

    metrics: columns epoch (n,), train_loss/test_loss/train_accuracy/test_accuracy (n,)
    with NaN for none, grad_norms (n, n_layers).
    """

    run: Mapping[str, Any]
    metrics: Mapping[str, np.ndarray]
    layers: Sequence[Layer]
    previous: Sequence[Layer] | None
    data: RunData | None
    baseline: float | None = None  # regression: MSE of predicting the mean (losschart)
    # The run's live charts, kept between frames (a fresh set draws every chart in full).
    charts: LiveCharts = field(default_factory=LiveCharts)


def empty_metrics(n_layers: int) -> dict[str, np.ndarray]:
    cols: dict[str, np.ndarray] = {"epoch": np.zeros(0, dtype=np.int64)}
    for name in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
        cols[name] = np.zeros(0)
    cols["grad_norms"] = np.zeros((0, n_layers))
    return cols


def metrics_from_lists(raw: Mapping[str, Sequence[Any]], n_layers: int) -> dict[str, np.ndarray]:
    """The API's columnar lists (None for none) as float arrays."""
    cols: dict[str, np.ndarray] = {"epoch": np.asarray(raw.get("epoch", []), dtype=np.int64)}
    for name in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
        cols[name] = render._as_float(list(raw.get(name, [])))
    grads = raw.get("grad_norms") or []
    g = np.full((len(grads), n_layers), np.nan)
    for i, row in enumerate(grads):
        vals = render._as_float(list(row or []))[:n_layers]
        g[i, : vals.size] = vals
    cols["grad_norms"] = g
    return cols


def status_context(run: Mapping[str, Any]) -> dict[str, Any]:
    status = RunStatus(run["status"])
    epochs = int(run.get("config", {}).get("epochs") or 0)
    # API.md: start is refused (409) from diverged/failed, and from completed at its last epoch.
    return {
        "status": str(status),
        "running": status == RunStatus.running,
        "can_start": status.can_start(int(run.get("epoch") or 0), epochs),
        "can_step": status.can_step,
        # A completed run can train on: "Train more" raises its epochs (settings.more_epochs).
        "more_epochs": epochs if status == "completed" else 0,
        "message": run.get("message"),
    }


def stats_context(run: Mapping[str, Any], metrics: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Epoch counter, status, and the latest losses/accuracies, formatted."""
    epochs = metrics["epoch"]
    last = {}
    for name in ("train_loss", "test_loss", "train_accuracy", "test_accuracy"):
        col = metrics[name]
        last[name] = float(col[-1]) if col.size else run.get(name)
    epoch = max(int(run.get("epoch") or 0), int(epochs[-1]) if epochs.size else 0)
    total = int(run.get("config", {}).get("epochs") or 0)
    pct = lambda v: "—" if v is None or not np.isfinite(v) else f"{100 * v:.1f}%"  # noqa: E731
    return {
        "epoch": epoch,
        "epoch_text": f"{epoch:,}",
        "epochs": total,
        "progress": min(100.0, 100.0 * epoch / total) if total else 0.0,
        "train_loss": render.format_number(last["train_loss"], 4),
        "test_loss": render.format_number(last["test_loss"], 4),
        "train_accuracy": pct(last["train_accuracy"]),
        "test_accuracy": pct(last["test_accuracy"]),
        "classification": run.get("task") == "classification",
        "best": _best_epoch_text(run, metrics),
        **status_context(run),
    }


def best_so_far(
    run: Mapping[str, Any], metrics: Mapping[str, np.ndarray]
) -> tuple[int, float] | None:
    """Early stopping's best epoch so far and its watched loss, by its own rule (None
    without early stopping or before an epoch with a finite loss)."""
    early = run.get("config", {}).get("early_stopping")
    if not early:
        return None
    return best_epoch(
        metrics["epoch"],
        metrics["train_loss"],
        metrics["test_loss"],
        float(early.get("min_delta", 0.0)),
    )


def _best_epoch_text(run: Mapping[str, Any], metrics: Mapping[str, np.ndarray]) -> str:
    found = best_so_far(run, metrics)
    if found is None:
        return ""
    epoch, loss = found
    return f"{epoch:,} ({render.format_number(loss, 4)})"


def best_mark(run: Mapping[str, Any], metrics: Mapping[str, np.ndarray]) -> charts.Mark | None:
    """The loss chart's mark at early stopping's best epoch so far (the weights a run
    that stopped early ends with)."""
    found = best_so_far(run, metrics)
    if found is None:
        return None
    epoch, loss = found
    return charts.Mark(epoch, loss, f"best: epoch {epoch:,}, loss {render.format_number(loss, 4)}")


def loss_charts(inp: LiveInput) -> dict[str, Any]:
    x = inp.metrics["epoch"]
    series = [
        charts.SeriesIn("train", "train", inp.metrics["train_loss"]),
        charts.SeriesIn("test", "test", inp.metrics["test_loss"]),
    ]
    if inp.baseline is not None and x.size:
        flat = np.full(x.size, inp.baseline)
        series.append(charts.SeriesIn("predicting the mean", "baseline", flat, dashed=True))
    rate = [charts.SeriesIn("learning rate", "rate", inp.metrics["learning_rate"])]
    mark = best_mark(inp.run, inp.metrics)
    return {
        "linear": inp.charts.update("loss-lin", x, series, mark, log=False),
        "log": inp.charts.update("loss-log", x, series, mark, log=True, hover=False),
        "names": [s.name for s in series],
        # The rate each epoch trained with (a schedule, or PATCHes), under the loss curve.
        "rate": inp.charts.update("rate", x, rate, height=90),
    }


def loss_context(inp: LiveInput) -> dict[str, Any]:
    """The loss chart, the loss named in words, the baseline, and whether to go log by itself."""
    loss = str(inp.run.get("config", {}).get("loss") or "")
    epochs = inp.metrics["epoch"]
    last = int(epochs[-1]) if epochs.size else 0
    losses = (inp.metrics["train_loss"], inp.metrics["test_loss"])
    context = {
        "loss_name": settings.LOSS_NAMES.get(loss, loss.replace("_", " ")),
        "baseline": None if inp.baseline is None else render.format_number(inp.baseline, 4),
        "auto_log": losschart.wants_log_scale(losses, last),
    }
    inp.charts.captions["loss"] = tuple(context.values())
    return {"charts": loss_charts(inp), **context}


def page_layout(data: RunData | None) -> str:
    """What the page's static parts (output box, predict inputs) were drawn for; a frame
    with another value makes the page reload (static/settings.js)."""
    if data is None:
        return ""
    return (
        f"{data.kind}|{data.n_inputs}|{data.n_outputs}|{data.task}|{data.bound:g}|{data.x_domain}"
    )


def accuracy_chart(inp: LiveInput) -> LiveChartView:
    series = [
        charts.SeriesIn("train", "train", inp.metrics["train_accuracy"]),
        charts.SeriesIn("test", "test", inp.metrics["test_accuracy"]),
    ]
    return inp.charts.update("acc", inp.metrics["epoch"], series, height=150, y_domain=(0.0, 1.0))


def grad_chart(metrics: Mapping[str, np.ndarray]) -> charts.Chart:
    g = metrics["grad_norms"]
    series = [
        charts.SeriesIn(
            f"layer {j + 1}",
            f"layer{j + 1}",
            g[:, j],
            render.CATEGORICAL[j % len(render.CATEGORICAL)],
        )
        for j in range(g.shape[1] if g.ndim == 2 else 0)
    ]
    # Per-step norms are noisy (one mini-batch each): draw ~100 geometric bucket means
    # so the per-layer levels (vanishing gradients) read at a glance.
    return charts.line_chart(
        metrics["epoch"], series, height=180, log=True, smooth=True, n_buckets=100
    )


def network_context(inp: LiveInput) -> diagram.Diagram:
    config = inp.run.get("config", {})
    activation = str(config.get("activation", "tanh"))
    out_act = str(config.get("output_activation") or "linear")
    sizes = list(inp.run.get("layer_sizes", []))
    features = config.get("features")
    maps = curves = None
    plane = inp.data is not None and inp.data.kind == "plane"
    if plane and inp.data is not None:
        maps = diagram.plane_maps(inp.layers, inp.data.bound, activation, out_act, features)
    elif inp.layers and sizes and sizes[0] == 1 and inp.data is not None:
        lo, hi = inp.data.x_domain
        xs = np.linspace(lo, hi, diagram.CURVE_POINTS)[:, None]
        acts = forward_trace(inp.layers, xs, activation, out_act)
        bound = max(abs(lo), abs(hi)) or 1.0
        curves = diagram.neuron_maps(acts, bound, activation, out_act)
    # 2-D data: every feature is drawn as an input node; None means the raw x1, x2.
    shown = (features or ["x1", "x2"]) if plane else None
    return diagram.network_diagram(
        sizes, inp.layers, maps, activation, out_act, curves=curves, features=shown
    )


def live_contexts(inp: LiveInput) -> dict[str, Callable[[], dict[str, Any]]]:
    """How to build the template context of every live-view fragment (keys as in FRAGMENTS).

    Callables, so a fragment that is reused (see render_fragments) costs nothing.
    """
    config = inp.run.get("config", {})
    activation = str(config.get("activation", "tanh"))
    out_act = str(config.get("output_activation") or "linear")
    classification = inp.run.get("task") == "classification"

    def confusion() -> dict[str, Any]:
        """Beside the map of a 2-D classification run (other runs' output view is one)."""
        rd = inp.data
        if rd is None or rd.kind != "plane":
            return {"confusion": [], "split": ""}
        counts = confusion_matrix(rd, inp.layers, activation, out_act, config.get("features"))
        return {"confusion": counts, "split": "test" if len(rd.x_test) else "training"}

    def output() -> dict[str, Any]:
        features = config.get("features")
        out = (
            output_frame(inp.data, inp.layers, activation, out_act, features) if inp.data else None
        )
        return {"out": out, "rd": inp.data}

    return {
        "controls": lambda: {"run": inp.run, "state": status_context(inp.run)},
        "stats": lambda: {"run": inp.run, "stats": stats_context(inp.run, inp.metrics)},
        "loss": lambda: loss_context(inp),
        "accuracy": lambda: {
            "chart": accuracy_chart(inp),
            "names": ["train", "test"],
            "classification": classification,
        },
        "network": lambda: {"diagram": network_context(inp)},
        "output": output,
        "points": lambda: {"rd": inp.data},
        "weights": lambda: {"matrices": matrices.weight_matrices(inp.layers, inp.previous)},
        "grads": lambda: {"chart": grad_chart(inp.metrics)},
        "settings": lambda: {"view": settings.settings_view(inp.run)},
        "summary": lambda: {"run": inp.run, "layout": page_layout(inp.data)},
        "confusion": confusion,
    }


def render_fragments(
    env: Environment,
    inp: LiveInput,
    static: dict[str, str] | None = None,
    reuse: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Render every fragment's inner HTML (the container's innerHTML).

    ``static`` caches the STATIC_FRAGMENTS of a run between calls (they depend
    only on its data): filled on the first call, reused after. ``reuse`` holds
    fragments the caller knows are unchanged (e.g. the weight views while the
    weights stay the same): they are taken as they are.
    """
    out = {}
    for name, build in live_contexts(inp).items():
        if reuse is not None and name in reuse:
            out[name] = reuse[name]
        elif static is not None and name in STATIC_FRAGMENTS and name in static:
            out[name] = static[name]
        else:
            out[name] = env.get_template(f"partials/live_{name}.html").render(build()).strip()
            if static is not None and name in STATIC_FRAGMENTS:
                static[name] = out[name]
    return out

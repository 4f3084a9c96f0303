# ruff: noqa: RUF001 -- UI text uses real typography (times sign, en dash, minus)
"""Context builders for the home and compare pages and the dataset preview."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from app.nn.datasets import DatasetError, dataset_to_json, make_dataset
from app.runs.errors import ProblemError
from app.ui import charts, forms, render, settings
from app.ui.outputview import run_data


def run_row(run: Mapping[str, Any], spark: str) -> dict[str, Any]:
    """One line of the runs table; ``spark`` is the loss sparkline's SVG path."""
    config = run.get("config", {})
    acc = run.get("test_accuracy")
    return {
        "id": run["id"],
        "name": run["name"],
        "dataset": config.get("dataset", {}).get("kind", ""),
        "architecture": "–".join(str(n) for n in run.get("layer_sizes", [])),
        "status": run["status"],
        "epoch": f"{int(run.get('epoch') or 0):,}",
        "epochs": f"{int(config.get('epochs') or 0):,}",
        "train_loss": render.format_number(run.get("train_loss"), 4),
        "test_loss": render.format_number(run.get("test_loss"), 4),
        "accuracy": "—" if acc is None else f"{100 * acc:.1f}%",
        "spark": spark,
    }


MAX_TABLE_ROWS = 100  # newest runs listed on / (each row reads its run's metrics for the sparkline)


def runs_rows(
    manager: Any, sparks: dict[str, tuple[Any, str]] | None = None
) -> list[dict[str, Any]]:
    """The runs table (newest first, at most MAX_TABLE_ROWS).

    ``sparks`` caches each run's sparkline by (resets, length of its history), so
    the table's polling redraws only the curves of runs that trained since.
    """
    rows = []
    cache: dict[str, tuple[Any, str]] = {} if sparks is None else sparks
    listed = manager.list_runs()[:MAX_TABLE_ROWS]
    for view in listed:
        run = view.public()
        spark = ""
        try:
            hub = manager.hub(run["id"])
        except ProblemError:  # deleted between the two calls: no sparkline
            hub = None
        if hub is not None:
            key = (hub.resets, len(hub.history))
            hit = cache.get(run["id"])
            if hit is not None and hit[0] == key:
                spark = hit[1]
            else:
                spark = charts.sparkline(hub.history.columns(0)["train_loss"])
                cache[run["id"]] = (key, spark)
        rows.append(run_row(run, spark))
    for stale in set(cache) - {v.id for v in listed}:
        del cache[stale]
    return rows


def latest_run(manager: Any) -> Any | None:
    """The most recently updated run (a RunView), or None when there are none."""
    views = manager.list_runs()
    return max(views, key=lambda v: v.updated_at) if views else None


def parse_run_ids(values: Iterable[str]) -> list[str]:
    """``?runs=a,b&runs=c`` → ['a', 'b', 'c'] (order kept, duplicates dropped)."""
    ids: list[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part and part not in ids:
                ids.append(part)
    return ids[:16]


def compare_context(manager: Any, run_ids: Sequence[str]) -> dict[str, Any]:
    """Overlaid loss curves (train solid, test dashed) of the chosen runs, on one epoch axis."""
    selected, missing, curves = [], [], []
    for i, run_id in enumerate(run_ids):
        try:
            run = manager.get(run_id).public()
            cols = manager.hub(run_id).history.columns(0)
        except ProblemError:  # unknown run
            missing.append(run_id)
            continue
        colour = render.CATEGORICAL[i % len(render.CATEGORICAL)]
        epochs = np.array(cols["epoch"], dtype=np.float64)
        curves.append(
            (run, colour, epochs, np.array(cols["train_loss"]), np.array(cols["test_loss"]))
        )
        last = " · ".join(
            f"{label} {render.format_number(float(col[-1]), 4) if len(col) else '—'}"
            for label, col in (("train", cols["train_loss"]), ("test", cols["test_loss"]))
        )
        selected.append({"id": run["id"], "name": run["name"], "color": colour, "last": last})
    # Put every curve on the union of epochs (NaN where a run has none) so one x axis fits all.
    all_epochs = np.unique(np.concatenate([c[2] for c in curves])) if curves else np.zeros(0)
    series = []
    for run, colour, epochs, train, test in curves:
        pos = np.searchsorted(all_epochs, epochs)
        for values, dashed, label in ((train, False, "train"), (test, True, "test")):
            y = np.full(all_epochs.size, np.nan)
            y[pos] = values
            series.append(charts.SeriesIn(f"{run['name']} ({label})", "run", y, colour, dashed))
    compare = {
        "linear": charts.line_chart(all_epochs, series, width=760, height=360),
        "log": charts.line_chart(all_epochs, series, width=760, height=360, log=True, hover=False),
    }
    chosen = set(run_ids)
    all_runs = [
        {"id": v.id, "name": v.name, "status": str(v.status), "checked": v.id in chosen}
        for v in manager.list_runs()
    ]
    return {"selected": selected, "charts": compare, "all_runs": all_runs, "missing": missing}


def dataset_preview(values: Mapping[str, Any]) -> dict[str, Any]:
    """Points of the dataset the form describes (same generator as the run will use)."""
    try:
        data = make_dataset(forms.body_from_values(values)["dataset"])
    except (DatasetError, ValueError, TypeError) as exc:
        field = getattr(exc, "field", None)
        message = getattr(exc, "message", str(exc))
        return {"rd": None, "error": f"{field}: {message}" if field else message, "note": None}
    sizes = [data.n_inputs, data.n_outputs]
    rd = run_data(dataset_to_json(data), data.task, sizes)
    note = None
    if rd.kind == "scatter":
        note = f"{data.n_inputs} inputs → {data.n_outputs} outputs: no 2-D picture."
    return {
        "rd": rd,
        "error": None,
        "note": note,
        "n_train": len(data.x_train),
        "n_test": len(data.x_test),
    }


def form_options() -> dict[str, Any]:
    def same(values: Iterable[str]) -> list[tuple[str, str]]:
        return [(v, v.replace("_", " ")) for v in values]

    return {
        "presets": list(forms.PRESET_LABELS.items()),
        "kinds": list(forms.KIND_LABELS.items()),
        "tasks": same(forms.TASKS),
        "activations": same(forms.ACTIVATIONS),
        "output_activations": [("", "auto (by task)"), *same(forms.OUTPUT_ACTIVATIONS)],
        "losses": [
            ("", "auto (by task)"),
            ("mse", "mean squared error"),
            ("cross_entropy", "cross-entropy"),
        ],
        "optimizers": [("sgd", "plain SGD"), ("momentum", "momentum"), ("adam", "Adam")],
        "inits": same(forms.INITS),
        "dtypes": same(forms.DTYPES),
        "learning_rates": forms.LEARNING_RATES,
        "speeds": list(forms.SPEEDS),
        "schedules": list(settings.SCHEDULE_NAMES.items()),
    }

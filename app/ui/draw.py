"""Draw your own data: the drawing widget's context, and the /runs/{id}/draw page that
trains a run on the points drawn (a `custom` dataset PATCHed in place)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from app.runs.errors import ProblemError
from app.runs.models import RunPatch
from app.ui import forms, render
from app.ui.csvdata import SEPARATORS, CsvError

router = APIRouter(include_in_schema=False)

MAX_POINTS = 2000  # points offered to the widget (a run's data can be far larger)
Point = tuple[float, float, float]  # x1, x2, class label or target value


@dataclass(frozen=True)
class DrawWidget:
    """Context of partials/draw_widget.html."""

    points_json: str
    task: str
    class_colors: tuple[str, ...]
    scale: tuple[str, str, str]
    data_name: str
    task_name: str
    data_text: str
    n_classes: int


def _hex(rgb: Sequence[int]) -> str:
    return "#" + "".join(f"{v:02x}" for v in rgb)


def widget(points: Sequence[Point], task: str, data_name: str, task_name: str) -> DrawWidget:
    task = task if task in forms.TASKS else "classification"
    points = list(points)[:MAX_POINTS]
    classes = [int(p[2]) for p in points] if task == "classification" else []
    text = "\n".join(
        f"{x:g}, {y:g}, {int(t) if task == 'classification' else round(t, 3):g}"
        for x, y, t in points
    )
    return DrawWidget(
        points_json=json.dumps([[round(x, 3), round(y, 3), t] for x, y, t in points]),
        task=task,
        class_colors=render.CLASS_COLORS,
        scale=(_hex(render.NEGATIVE_RGB), _hex(render.ZERO_RGB), _hex(render.POSITIVE_RGB)),
        data_name=data_name,
        task_name=task_name,
        data_text=text,
        n_classes=min(len(render.CLASS_COLORS), max([2, *(c + 1 for c in classes)])),
    )


def points_from_text(text: str, task: str) -> list[Point]:
    """The widget's own CSV text back to points, skipping what does not parse (the form
    re-renders the widget from it after a validation error)."""
    points: list[Point] = []
    for line in text.splitlines():
        cells = [c for c in SEPARATORS.split(line.strip()) if c]
        try:
            x, y, t = (float(c) for c in cells)
        except ValueError:
            continue
        if not all(math.isfinite(v) for v in (x, y, t)):
            continue
        if task == "classification" and not (t.is_integer() and 0 <= t < 8):
            continue
        points.append((x, y, int(t) if task == "classification" else t))
    return points


def form_widget(values: Mapping[str, Any]) -> DrawWidget:
    """The widget inside the new-run form ("Draw your own")."""
    task = str(values.get("dataset.drawn_task", "classification"))
    points = points_from_text(str(values.get("dataset.drawn", "")), task)
    return widget(points, task, "dataset.drawn", "dataset.drawn_task")


def points_from_run(data: Mapping[str, Any], task: str) -> list[Point]:
    """A run's train and test points when its data is 2-D with one target (else none)."""
    points: list[Point] = []
    for part in ("train", "test"):
        xs, ys = data[part]["x"], data[part]["y"]
        for x, y in zip(xs, ys, strict=True):
            if len(x) != 2:
                return []
            if task == "classification":
                points.append((float(x[0]), float(x[1]), int(y)))
            elif len(y) == 1 and y[0] is not None:
                points.append((float(x[0]), float(x[1]), float(y[0])))
            else:
                return []
    return points


# ---------------------------------------------------------------- the draw page


def _ui_page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Any:
    templates = request.app.state.ui.templates
    return templates.TemplateResponse(request, name, context, status_code=status)


@router.get("/runs/{run_id}/draw", response_class=HTMLResponse)
async def draw_page(request: Request, run_id: str) -> HTMLResponse:
    manager = request.app.state.manager
    try:
        run = manager.get(run_id).public()
        data = manager.data(run_id)
    except ProblemError:
        return _ui_page(  # type: ignore[no-any-return]
            request,
            "pages/not_found.html",
            {"title": "Not found", "active": "", "message": "There is no run with this id."},
            404,
        )
    points = points_from_run(data, run["task"])
    context = {
        "title": f"Draw data · {run['name']}",
        "active": "",
        "run": run,
        "prefilled": bool(points),
        "draw": widget(points, run["task"], "points", "task"),
    }
    return _ui_page(request, "pages/draw.html", context)  # type: ignore[no-any-return]


def _problem(request: Request, text: str) -> HTMLResponse:
    return _ui_page(  # type: ignore[no-any-return]
        request, "partials/control_message.html", {"text": text, "error": True}
    )


@router.post("/ui/runs/{run_id}/draw", response_model=None)
async def train_on_drawn(request: Request, run_id: str) -> Response:
    """PATCH the run's data to the points drawn, start it, and go back to its live view."""
    form = await request.form()
    task = str(form.get("task", "classification"))
    if task not in forms.TASKS:
        return _problem(request, "task: must be classification or regression")
    try:
        x, y = forms.custom_rows(str(form.get("points", "")), task, drawn=True)
        patch = RunPatch.model_validate(
            {"dataset": {"kind": "custom", "task": task, "x": x, "y": y}}
        )
    except CsvError as exc:
        return _problem(request, str(exc).capitalize() + ".")
    except ValidationError as exc:
        errors = forms.errors_from_validation(exc.errors())
        return _problem(request, "; ".join(errors.values()))
    manager = request.app.state.manager
    try:
        view = await manager.patch(run_id, patch)
        if str(view.status) != "running":
            await manager.start(run_id)  # "Train on these points": it trains
    except ProblemError as exc:
        return _problem(request, exc.detail)
    return Response(status_code=200, headers={"HX-Redirect": f"/runs/{run_id}"})

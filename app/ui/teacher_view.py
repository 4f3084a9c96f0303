# ruff: noqa: RUF001 -- UI text uses real typography (en dash)
"""Teacher beside student (/runs/{id}/teacher) for runs on a `teacher` dataset.

The teacher is the network that made the data (API.md v1.1 "Teacher networks
the student can see"): its layers come from ``manager.teacher``, with its
activation on every layer, output included. Everything compares the student
with the teacher's *clean* outputs (the dataset's targets add `noise` to them):
the output scatter and the gap, the MSE between the two over the evaluation
set (the test set, or the training set when there is none), at each kept
snapshot epoch (at most GAP_EPOCHS of them, evenly spread).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.runs.errors import ProblemError
from app.ui import charts, diagram, histograms, render
from app.ui.history import network_picture
from app.ui.maps import Layer, forward_trace, normalise_layers, plane_grid
from app.ui.outputview import GRID_BUDGET, MIN_OUTPUT_RES, OUTPUT_RES, RunData, run_data

router = APIRouter(include_in_schema=False)

GAP_EPOCHS = 200  # kept epochs the gap is computed at (evenly spread)
SCATTER_POINTS = 400  # samples in the student-against-teacher plot
TABLE_ROWS = 8  # samples in the outputs table (data that is not 2-D)
SIZE = 300  # px, side of the scatter plot


@dataclass(frozen=True)
class Teacher:
    layers: list[Layer]
    activation: str

    @property
    def sizes(self) -> list[int]:
        return [self.layers[0].weights.shape[1], *(la.weights.shape[0] for la in self.layers)]


@dataclass
class ScatterPoint:
    cx: float
    cy: float
    fill: str


@dataclass
class Scatter:
    points: list[ScatterPoint] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)  # same on both axes
    series: list[tuple[str, str]] = field(default_factory=list)  # (colour, "output 1")


@dataclass
class Gap:
    epoch: int
    value: float
    text: str


def eval_inputs(data: Mapping[str, Any]) -> tuple[np.ndarray, str]:
    """The inputs every comparison uses: the test set's x, or the training set's without one."""
    test = data.get("test", {}).get("x") or []
    if len(test):
        return np.asarray(test, dtype=np.float64), "test"
    return np.asarray(data.get("train", {}).get("x") or [], dtype=np.float64), "training"


def teacher_outputs(teacher: Teacher, x: np.ndarray) -> np.ndarray:
    """The teacher's clean outputs (n, n_out): its activation on every layer, output too."""
    return forward_trace(teacher.layers, x, teacher.activation, teacher.activation)[-1]


def student_outputs(run: Mapping[str, Any], layers: Sequence[Layer], x: np.ndarray) -> np.ndarray:
    """The run's network on raw inputs x (n, n_in): (n, n_out), features applied."""
    config = run.get("config", {})
    act = str(config.get("activation", "tanh"))
    out_act = str(config.get("output_activation") or "linear")
    return forward_trace(layers, x, act, out_act, config.get("features"))[-1]


def output_gap(student: np.ndarray, teacher: np.ndarray) -> float:
    """Mean squared difference over every sample and output (API.md's mse, no ½)."""
    return float(np.mean((np.asarray(student) - np.asarray(teacher)) ** 2))


def gap_series(
    run: Mapping[str, Any],
    epochs: Sequence[int],
    per_epoch: Sequence[Sequence[Layer]],
    x: np.ndarray,
    target: np.ndarray,
) -> list[Gap]:
    """The gap at each of ``epochs`` (per_epoch[k]: the student's layers at epochs[k])."""
    out = []
    for epoch, layers in zip(epochs, per_epoch, strict=True):
        value = output_gap(student_outputs(run, layers, x), target)
        out.append(Gap(int(epoch), value, render.format_number(value, 4)))
    return out


def gap_chart(gaps: Sequence[Gap]) -> charts.Chart:
    xs = np.array([g.epoch for g in gaps], dtype=np.float64)
    ys = np.array([g.value for g in gaps], dtype=np.float64)
    positive = bool(ys.size) and bool(np.all(ys[np.isfinite(ys)] > 0))
    series = [charts.SeriesIn("student–teacher gap", "gap", ys, render.CATEGORICAL[2])]
    return charts.line_chart(xs, series, height=180, log=positive, hover=False)


def gap_rows(gaps: Sequence[Gap], limit: int = TABLE_ROWS) -> list[Gap]:
    """A few of ``gaps`` for the table: first, last and evenly between."""
    picked = set(histograms.subsample_epochs([g.epoch for g in gaps], limit))
    return [g for g in gaps if g.epoch in picked]


def scatter(student: np.ndarray, teacher: np.ndarray) -> Scatter:
    """Student (y) against teacher (x) outputs, every output in its colour, one square domain."""
    idx = render.subsample_indices(len(teacher), SCATTER_POINTS)
    s, t = student[idx], teacher[idx]
    ext = render.finite_extent(s, t) or (-1.0, 1.0)
    dom = render.nice_domain(*ext, 5)
    plot = Scatter()
    plot.ticks = [
        (float(render.linear_scale(v, dom, (0, SIZE))), render.format_tick(v))
        for v in render.nice_ticks(*dom, 5)
    ]
    for k in range(min(t.shape[1], len(render.CATEGORICAL))):
        colour = render.CATEGORICAL[k]
        plot.series.append((colour, f"output {k + 1}"))
        px = render.linear_scale(t[:, k], dom, (0, SIZE))
        py = np.clip(render.linear_scale(s[:, k], dom, (SIZE, 0)), -4, SIZE + 4)
        for cx, cy in zip(px.tolist(), py.tolist(), strict=True):
            if np.isfinite(cx) and np.isfinite(cy):
                plot.points.append(ScatterPoint(round(cx, 1), round(cy, 1), colour))
    return plot


def teacher_picture(teacher: Teacher, rd: RunData | None) -> diagram.Diagram:
    """The teacher's diagram: neuron maps over the plane for 2 inputs (raw x, no features)."""
    maps = None
    if rd is not None and rd.kind == "plane":
        maps = diagram.plane_maps(
            teacher.layers, rd.bound, teacher.activation, teacher.activation, None
        )
        maps = [maps[0][:, :2], *maps[1:]]  # the inputs are x1, x2 themselves
    return diagram.network_diagram(
        teacher.sizes, teacher.layers, maps, teacher.activation, teacher.activation
    )


@dataclass
class PlaneMaps:
    """Output 1 of teacher and student over the input plane, on one colour scale."""

    teacher: str  # PNG data URI
    student: str
    centre: str  # the scale's middle (grey) and half-width, formatted
    spread: str


def plane_maps(
    run: Mapping[str, Any], teacher: Teacher, student: Sequence[Layer], bound: float
) -> PlaneMaps:
    """Both maps coloured around the teacher's mean output over the plane, ± its largest
    deviation there: a sigmoid teacher's outputs (often all near 0.5) still show their shape."""
    res = outputview_res(teacher, student)
    grid = plane_grid(bound, res)
    t = teacher_outputs(teacher, grid)[:, 0]
    s = student_outputs(run, student, grid)[:, 0]
    finite = t[np.isfinite(t)]
    centre = float(finite.mean()) if finite.size else 0.0
    spread = float(np.abs(finite - centre).max()) if finite.size else 1.0
    spread = spread or 1.0

    def image(v: np.ndarray) -> str:
        rgb = render.diverging_rgb(v - centre, spread, 30)
        return render.png_data_uri(rgb.reshape(res, res, 3))

    return PlaneMaps(image(t), image(s), render.format_number(centre), render.format_number(spread))


def outputview_res(teacher: Teacher, student: Sequence[Layer]) -> int:
    n_params = sum(la.weights.size for la in (*teacher.layers, *student))
    return render.grid_resolution(n_params, GRID_BUDGET, MIN_OUTPUT_RES, OUTPUT_RES)


def outputs_table(
    x: np.ndarray, teacher: np.ndarray, student: np.ndarray, limit: int = TABLE_ROWS
) -> list[dict[str, list[str]]]:
    """The first samples' inputs (at most 4 shown), teacher and student outputs, formatted."""

    def fmt(row: np.ndarray) -> list[str]:
        return [render.format_number(float(v), 3) for v in row]

    return [
        {"x": fmt(x[i, :4]), "teacher": fmt(teacher[i]), "student": fmt(student[i])}
        for i in range(min(limit, len(x)))
    ]


@dataclass
class TeacherPage:
    teacher_diagram: diagram.Diagram
    student_diagram: diagram.Diagram
    maps: PlaneMaps | None
    scatter: Scatter
    gaps: list[Gap]
    gap_rows: list[Gap]
    chart: charts.Chart
    table: list[dict[str, list[str]]]
    eval_name: str
    student_epoch: int
    rd: RunData


def teacher_page(
    run: Mapping[str, Any],
    teacher: Teacher,
    student: Sequence[Layer],
    student_epoch: int,
    data: Mapping[str, Any],
    history: tuple[Sequence[int], Sequence[Sequence[Layer]]],
) -> TeacherPage:
    """Everything the page draws (pure: NumPy and the render functions)."""
    rd = run_data(data, str(run["task"]), run["layer_sizes"])
    x, eval_name = eval_inputs(data)
    t_out = teacher_outputs(teacher, x)
    s_out = student_outputs(run, student, x)
    plane = rd.kind == "plane"
    gaps = gap_series(run, history[0], history[1], x, t_out)
    return TeacherPage(
        teacher_diagram=teacher_picture(teacher, rd),
        student_diagram=network_picture(run, student, rd),
        maps=plane_maps(run, teacher, student, rd.bound) if plane else None,
        scatter=scatter(s_out, t_out),
        gaps=gaps,
        gap_rows=gap_rows(gaps),
        chart=gap_chart(gaps),
        table=[] if plane else outputs_table(x, t_out, s_out),
        eval_name=eval_name,
        student_epoch=student_epoch,
        rd=rd,
    )


def _page_from(
    manager: Any,
    run: Mapping[str, Any],
    teacher: Teacher,
    current: Mapping[str, Any],
    data: Mapping[str, Any],
    kept: Sequence[int],
) -> TeacherPage:
    """Read the kept snapshots and draw the page (in a thread: snapshots may be large)."""
    per_epoch = [normalise_layers(manager.weights(str(run["id"]), e)) for e in kept]
    student = normalise_layers(current)
    return teacher_page(run, teacher, student, int(current["epoch"]), data, (kept, per_epoch))


def _not_found(request: Request, message: str) -> HTMLResponse:
    context = {"title": "Not found", "active": "", "message": message}
    templates = request.app.state.ui.templates
    return templates.TemplateResponse(request, "pages/not_found.html", context, status_code=404)  # type: ignore[no-any-return]


@router.get("/runs/{run_id}/teacher", response_class=HTMLResponse)
async def teacher_route(request: Request, run_id: str) -> HTMLResponse:
    manager = request.app.state.manager
    try:
        run = manager.get(run_id).public()
    except ProblemError:
        return _not_found(request, "There is no run with this id.")
    kind = run["config"]["dataset"]["kind"]
    if kind != "teacher":
        return _not_found(
            request, f"This run does not learn from a teacher network: its data is {kind}."
        )
    try:
        raw = manager.teacher(run_id)
        teacher = Teacher(normalise_layers(raw), str(raw["activation"]))
        current = manager.weights(run_id)
        kept = histograms.subsample_epochs(manager.snapshots(run_id)["epochs"], GAP_EPOCHS)
        data = manager.data(run_id)
        page = await asyncio.to_thread(_page_from, manager, run, teacher, current, data, kept)
    except ProblemError as exc:  # deleted or reset while we read it
        return _not_found(request, exc.detail)
    context = {
        "title": f"Teacher · {run['name']}",
        "active": "",
        "run": run,
        "teacher": raw,
        "teacher_sizes": teacher.sizes,
        "page": page,
    }
    templates = request.app.state.ui.templates
    return templates.TemplateResponse(request, "pages/teacher.html", context)  # type: ignore[no-any-return]

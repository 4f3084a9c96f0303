"""The sweep page `/sweeps/{id}` (its runs' table, sortable, the best run marked, and their
loss curves overlaid), the sweeps list on `/runs`, and the new-run form's "Create sweep"."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from app.runs.errors import ProblemError
from app.runs.messages import problem_from_validation
from app.runs.models import RunStatus
from app.runs.sweeps import SweepCreate, SweepView, grid_value_text
from app.ui import draw, forms, pages, render
from app.ui.csvdata import CsvError

router = APIRouter(include_in_schema=False)

# Fields the new-run form's sweep can vary: (field, label, integer?); values comma-separated.
SWEEP_FIELDS = (
    ("learning_rate", "learning rate", False),
    ("seed", "seed", True),
    ("batch_size", "batch size", True),
    ("momentum", "momentum", False),
    ("l2", "L2", False),
    ("l1", "L1", False),
    ("epochs", "epochs", True),
    ("activation", "activation", None),
    ("optimizer", "optimizer", None),
    ("init", "initialisation", None),
)
SORTS = ("grid", "name", "status", "epoch", "train_loss", "test_loss")


@dataclass(frozen=True)
class SweepRow:
    id: str
    name: str
    values: list[str]  # its grid values, in the grid's field order
    status: str
    epoch: str
    train_loss: str
    test_loss: str
    best: bool


def final_loss(run: Mapping[str, Any]) -> float | None:
    """What "best" compares: the test loss, the train loss when there is no test set."""
    value = run.get("test_loss")
    if value is None:
        value = run.get("train_loss")
    return value if value is not None and math.isfinite(value) else None


def best_run_id(runs: list[dict[str, Any]]) -> str | None:
    scored = [(loss, r["id"]) for r in runs if (loss := final_loss(r)) is not None]
    return min(scored)[1] if scored else None


def _sort_key(sort: str, run: dict[str, Any], position: int, fields: list[str]) -> Any:
    """Missing values (None) sort last; grid fields compare as numbers when they are."""
    if sort in fields:
        value = run["config"].get(sort)
        return (0, value) if isinstance(value, int | float) else (1, grid_value_text(value))
    if sort == "grid":
        return (0, position)
    value = run.get(sort) if sort != "name" else run["name"]
    return (1, 0) if value is None else (0, value)


def sweep_rows(sweep: SweepView, sort: str = "grid", descending: bool = False) -> list[SweepRow]:
    fields = list(sweep.grid)
    runs = [view.public() for view in sweep.runs]
    best = best_run_id(runs)
    order = sorted(
        range(len(runs)),
        key=lambda i: _sort_key(sort, runs[i], i, fields),
        reverse=descending,
    )
    return [
        SweepRow(
            id=runs[i]["id"],
            name=runs[i]["name"],
            values=[grid_value_text(runs[i]["config"].get(f)) for f in fields],
            status=runs[i]["status"],
            epoch=f"{runs[i]['epoch']:,} / {runs[i]['config']['epochs']:,}",
            train_loss=render.format_number(runs[i]["train_loss"], 4),
            test_loss=render.format_number(runs[i]["test_loss"], 4),
            best=runs[i]["id"] == best,
        )
        for i in order
    ]


def table_context(sweep: SweepView, sort: str, order: str) -> dict[str, Any]:
    if sort not in SORTS and sort not in sweep.grid:
        sort = "grid"
    descending = order == "desc"
    counts: dict[str, int] = {}
    for view in sweep.runs:
        counts[str(view.status)] = counts.get(str(view.status), 0) + 1
    return {
        "sweep": sweep,
        "fields": list(sweep.grid),
        "rows": sweep_rows(sweep, sort, descending),
        "sort": sort,
        "order": "desc" if descending else "asc",
        "counts": sorted(counts.items()),
        "live": any(RunStatus(v.status).is_active for v in sweep.runs),
    }


def sweep_summaries(manager: Any) -> list[dict[str, Any]]:
    """The sweeps list on /runs: name, how many runs, how many of each status."""
    out = []
    for sweep in manager.list_sweeps():
        counts: dict[str, int] = {}
        for view in sweep.runs:
            counts[str(view.status)] = counts.get(str(view.status), 0) + 1
        out.append(
            {
                "id": sweep.id,
                "name": sweep.name,
                "n_runs": len(sweep.runs),
                "counts": ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
            }
        )
    return out


def parse_values(field: str, text: str) -> list[Any]:
    """A form's comma-separated values for a sweep field (numbers where the field takes
    them; the text itself otherwise, so validation names the field)."""
    kinds = {name: integer for name, _, integer in SWEEP_FIELDS}
    parts = [p.strip() for p in text.split(",") if p.strip()]
    integer = kinds.get(field)
    if integer is None:
        return parts
    return [forms._number(p, integer) for p in parts]  # one parser for the form's numbers


def sweep_from_form(form: Any) -> tuple[SweepCreate | None, dict[str, Any], dict[str, str]]:
    """(SweepCreate or None, the form's values, errors by field) from the new-run form."""
    values = forms.form_values(form)
    grid: dict[str, list[Any]] = {}
    for n in ("1", "2"):
        field = str(form.get(f"sweep.field{n}", "")).strip()
        text = str(form.get(f"sweep.values{n}", ""))
        values[f"sweep.field{n}"], values[f"sweep.values{n}"] = field, text
        if field:
            if field in grid:
                return None, values, {"sweep": f"{field} is chosen twice"}
            grid[field] = parse_values(field, text)
            if not grid[field]:
                return None, values, {"sweep": f"give the values of {field}, comma-separated"}
    if not grid:
        return None, values, {"sweep": "pick a field to vary and its values"}
    try:
        base = forms.body_from_values(values)
    except CsvError as exc:
        return None, values, {"dataset.data": str(exc)}
    base.pop("start", None)
    base.pop("name", None)  # a sweep's runs are named after their grid values
    name = str(form.get("name", "")).strip() or None
    try:
        return SweepCreate(name=name, base=base, grid=grid), values, {}
    except ValidationError as exc:
        return None, values, {"sweep": problem_from_validation(exc).detail}


# ---- routes ----------------------------------------------------------------------------


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    templates = request.app.state.ui.templates
    return templates.TemplateResponse(request, name, context, status_code=status)  # type: ignore[no-any-return]


def _sweep_or_404(request: Request, sweep_id: str) -> SweepView | HTMLResponse:
    try:
        return request.app.state.manager.get_sweep(sweep_id)  # type: ignore[no-any-return]
    except ProblemError:
        context = {"title": "Not found", "active": "", "message": f"No sweep {sweep_id!r}."}
        return _page(request, "pages/not_found.html", context, 404)


def _chart_context(request: Request, sweep: SweepView) -> dict[str, Any]:
    context = pages.compare_context(request.app.state.manager, [v.id for v in sweep.runs])
    live = any(RunStatus(v.status).is_active for v in sweep.runs)
    return context | {"sweep": sweep, "live": live}


@router.get("/sweeps/{sweep_id}", response_class=HTMLResponse)
async def sweep_page(
    request: Request,
    sweep_id: str,
    sort: Annotated[str, Query(max_length=40)] = "grid",
    order: Annotated[str, Query(max_length=4)] = "asc",
) -> HTMLResponse:
    sweep = _sweep_or_404(request, sweep_id)
    if isinstance(sweep, HTMLResponse):
        return sweep
    context = table_context(sweep, sort, order) | _chart_context(request, sweep)
    context |= {"title": f"Sweep {sweep.name}", "active": "runs"}
    return _page(request, "pages/sweep.html", context)


@router.get("/ui/sweeps/{sweep_id}/table", response_class=HTMLResponse)
async def sweep_table(
    request: Request,
    sweep_id: str,
    sort: Annotated[str, Query(max_length=40)] = "grid",
    order: Annotated[str, Query(max_length=4)] = "asc",
) -> HTMLResponse:
    """The table, polled every second while the sweep has running or queued runs."""
    sweep = _sweep_or_404(request, sweep_id)
    if isinstance(sweep, HTMLResponse):
        return sweep
    return _page(request, "partials/sweep_table.html", table_context(sweep, sort, order))


@router.get("/ui/sweeps/{sweep_id}/chart", response_class=HTMLResponse)
async def sweep_chart(request: Request, sweep_id: str) -> HTMLResponse:
    sweep = _sweep_or_404(request, sweep_id)
    if isinstance(sweep, HTMLResponse):
        return sweep
    return _page(request, "partials/sweep_chart.html", _chart_context(request, sweep))


@router.get("/ui/sweeps-list", response_class=HTMLResponse)
async def sweeps_list(request: Request) -> HTMLResponse:
    context = {"sweeps": sweep_summaries(request.app.state.manager)}
    return _page(request, "partials/sweeps_list.html", context)


@router.post("/ui/sweeps/{sweep_id}/stop", response_class=HTMLResponse)
async def stop_sweep(request: Request, sweep_id: str) -> HTMLResponse:
    try:
        sweep = await request.app.state.manager.stop_sweep(sweep_id)
    except ProblemError as exc:
        return _page(request, "partials/control_message.html", {"text": exc.detail, "error": True})
    return _page(request, "partials/sweep_table.html", table_context(sweep, "grid", "asc"))


@router.post("/ui/sweeps/{sweep_id}/delete", response_model=None)
async def delete_sweep(request: Request, sweep_id: str) -> Response:
    try:
        await request.app.state.manager.delete_sweep(sweep_id)
    except ProblemError as exc:
        return _page(request, "partials/control_message.html", {"text": exc.detail, "error": True})
    if request.headers.get("HX-Request"):
        return Response(status_code=200, headers={"HX-Redirect": "/runs"})
    return RedirectResponse("/runs", status_code=303)


@router.post("/ui/sweeps", response_model=None)
async def create_sweep(request: Request) -> Response:
    """The new-run form's "Create sweep": errors re-render the form, else the sweep page."""
    form = await request.form()
    body, values, errors = sweep_from_form(form)
    if body is not None:
        try:
            sweep = await request.app.state.manager.create_sweep(body)
        except ProblemError as exc:
            errors = {"sweep": exc.detail}
        else:
            target = f"/sweeps/{sweep.id}"
            if request.headers.get("HX-Request"):
                return Response(status_code=200, headers={"HX-Redirect": target})
            return RedirectResponse(target, status_code=303)
    context = {
        "values": values,
        "errors": errors,
        "options": pages.form_options(),
        "preview": pages.dataset_preview(values),
    }
    context["draw"] = draw.form_widget(values)
    status = 200 if request.headers.get("HX-Request") else 422
    return _page(request, "partials/new_run_form.html", context, status)

"""HTML pages and the small htmx endpoints behind their controls."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pydantic import ValidationError

from app.runs.errors import ProblemError
from app.runs.models import RunPatch
from app.ui import descent, draw, forms, pages, settings, settings_fields
from app.ui.frames import FrameCache, oob

router = APIRouter(include_in_schema=False)


@dataclass
class UiState:
    """The UI's shared objects (kept on ``app.state.ui``)."""

    templates: Jinja2Templates
    frames: FrameCache
    # run id -> ((resets, history length), sparkline path) for the runs table
    sparks: dict[str, tuple[Any, str]] = field(default_factory=dict)
    # `/` creates the default learner run when there is none: one at a time.
    home_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _ui(request: Request) -> UiState:
    return request.app.state.ui  # type: ignore[no-any-return]


def _manager(request: Request) -> Any:
    return request.app.state.manager


def _page(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    return _ui(request).templates.TemplateResponse(request, name, context, status_code=status_code)


def _not_found(request: Request, message: str) -> HTMLResponse:
    return _page(
        request,
        "pages/not_found.html",
        {"title": "Not found", "active": "", "message": message},
        404,
    )


def _message(request: Request, text: str, error: bool = False) -> HTMLResponse:
    return _page(request, "partials/control_message.html", {"text": text, "error": error})


# ---------------------------------------------------------------- home and the new-run form


async def _form_context(
    request: Request, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    return {
        "values": values,
        "errors": errors,
        "options": pages.form_options(),
        "preview": await _preview(request, values),
        "draw": draw.form_widget(values),
    }


async def _preview(request: Request, values: dict[str, Any]) -> dict[str, Any]:
    """The dataset preview, built off the event loop (100,000 samples take ~0.3 s) as
    one of the manager's bounded jobs."""
    return await _manager(request).jobs.run(pages.dataset_preview, values)


@router.get("/", response_model=None)
async def home(request: Request) -> Response:
    """Open on something that learns: the most recently updated run's live view; on an
    empty database, first the default learner run (created once, even under a burst)."""
    ui, manager = _ui(request), _manager(request)
    async with ui.home_lock:
        latest = pages.latest_run(manager)
        if latest is None:
            latest = await manager.create(forms.learner_run())
    return RedirectResponse(f"/runs/{latest.id}", status_code=303)


@router.get("/runs", response_class=HTMLResponse)
async def runs_page(request: Request) -> HTMLResponse:
    values = forms.preset_values(None)
    context = {
        "title": "Runs",
        "active": "runs",
        "rows": pages.runs_rows(_manager(request), _ui(request).sparks),
    }
    return _page(request, "pages/home.html", context | await _form_context(request, values, {}))


@router.get("/ui/runs-table", response_class=HTMLResponse)
async def runs_table(request: Request) -> HTMLResponse:
    return _page(
        request,
        "partials/runs_table.html",
        {"rows": pages.runs_rows(_manager(request), _ui(request).sparks)},
    )


@router.get("/ui/new-run", response_class=HTMLResponse)
async def new_run_form(request: Request, preset: str | None = None) -> HTMLResponse:
    return _page(
        request,
        "partials/new_run_form.html",
        await _form_context(request, forms.preset_values(preset), {}),
    )


@router.get("/ui/dataset-preview", response_class=HTMLResponse)
@router.post("/ui/dataset-preview", response_class=HTMLResponse)
async def dataset_preview(request: Request) -> HTMLResponse:
    # POST from the form (custom data can be longer than a URL); GET for a plain link.
    fields = await request.form() if request.method == "POST" else request.query_params
    values = forms.preset_values(None) | {
        k: str(v) for k, v in fields.items() if k.startswith("dataset.")
    }
    return _page(
        request, "partials/dataset_preview.html", {"preview": await _preview(request, values)}
    )


@router.post("/ui/new-run/arch", response_class=HTMLResponse)
async def arch_editor(request: Request) -> HTMLResponse:
    form = await request.form()
    layers = forms.arch_edit(
        [str(v) for v in form.getlist("hidden_layers")], str(form.get("arch_op", ""))
    )
    return _page(request, "partials/arch_editor.html", {"layers": layers, "errors": {}})


@router.post("/ui/runs", response_model=None)
async def create_run(request: Request) -> Response:
    """Create a run from the form; errors re-render the form next to their fields."""
    form = await request.form()
    values = forms.form_values(form)
    body, errors = forms.parse_run_create(values)
    if body is not None:
        try:
            view = await _manager(request).create(body)
        except ProblemError as exc:
            errors = forms.errors_from_problem(exc)
        else:
            target = f"/runs/{view.id}"
            if request.headers.get("HX-Request"):
                return Response(status_code=200, headers={"HX-Redirect": target})
            return RedirectResponse(target, status_code=303)
    if request.headers.get("HX-Request"):
        return _page(
            request, "partials/new_run_form.html", await _form_context(request, values, errors)
        )
    context = {
        "title": "Runs",
        "active": "runs",
        "rows": pages.runs_rows(_manager(request), _ui(request).sparks),
    }
    return _page(
        request, "pages/home.html", context | await _form_context(request, values, errors), 422
    )


# ---------------------------------------------------------------- the live view


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(request: Request, run_id: str) -> HTMLResponse:
    ui = _ui(request)
    try:
        rendered = await ui.frames.current_async(_manager(request), run_id)
    except ProblemError:
        return _not_found(request, "There is no run with this id (it may have been deleted).")
    state = ui.frames.states[run_id]
    run = _manager(request).hub(run_id).run_view.public()
    context = {
        "title": run["name"],
        "active": "",
        "run": run,
        # Rendered from the autoescaped live_* partials (see views.render_fragments).
        "fragments": {name: Markup(html) for name, html in rendered.fragments.items()},
        "rd": state.data,
        "lr_values": forms.LEARNING_RATES,
        "batch_values": settings.BATCH_SIZES,
    }
    return _page(request, "pages/run.html", context)


async def _control(request: Request, run_id: str, action: str) -> HTMLResponse:
    manager = _manager(request)
    try:
        if action == "toggle":
            if str(manager.get(run_id).status) == "running":
                await manager.stop(run_id)
            else:
                await manager.start(run_id)
        elif action == "step":
            await manager.step(run_id, 1)
        elif action == "reset":
            await manager.reset(run_id)
    except ProblemError as exc:
        return _message(request, exc.detail, error=True)
    return _message(request, "")


@router.post("/ui/runs/{run_id}/toggle", response_class=HTMLResponse)
async def toggle_run(request: Request, run_id: str) -> HTMLResponse:
    return await _control(request, run_id, "toggle")


@router.post("/ui/runs/{run_id}/step", response_class=HTMLResponse)
async def step_run(request: Request, run_id: str) -> HTMLResponse:
    return await _control(request, run_id, "step")


@router.post("/ui/runs/{run_id}/reset", response_class=HTMLResponse)
async def reset_run(request: Request, run_id: str) -> HTMLResponse:
    return await _control(request, run_id, "reset")


@router.post("/ui/runs/{run_id}/delete", response_model=None)
async def delete_run(request: Request, run_id: str) -> Response:
    try:
        await _manager(request).delete(run_id)
    except ProblemError as exc:
        return _message(request, exc.detail, error=True)
    _ui(request).frames.forget(run_id)
    return Response(status_code=200, headers={"HX-Redirect": "/runs"})


def _settings_oob(request: Request, run: dict[str, Any], submitted: str) -> str:
    """The settings panel drawn from ``run``'s config, swapped in out of band."""
    view = settings.settings_view(run, submitted)
    template = _ui(request).templates.get_template("partials/live_settings.html")
    return oob("settings", template.render(view=view).strip())


@router.post("/ui/runs/{run_id}/patch", response_class=HTMLResponse)
async def patch_run(request: Request, run_id: str) -> HTMLResponse:
    """Apply one settings-panel change (or several fields) to the run, in place.

    Answers with a message and the panel re-drawn from the config in effect, so
    a refused value goes back to the one the run uses.
    """
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    body = settings_fields.parse_patch(values, [str(v) for v in form.getlist("checkbox")])
    submitted = ",".join(name for name in settings_fields.FIELDS if name in values)
    manager = _manager(request)
    error = True
    try:
        view = await manager.patch(run_id, RunPatch.model_validate(body))
    except ValidationError as exc:
        text = settings_fields.plain_errors(exc.errors())
    except ProblemError as exc:
        text = settings_fields.problem_message(exc.field, exc.detail)
    else:
        error = False
        text = settings_fields.success_message(body, view.config)
    message = _page(request, "partials/control_message.html", {"text": text, "error": error})
    try:
        run = manager.get(run_id).public()
    except ProblemError:  # unknown or deleted run: nothing to re-draw
        return message
    panel = _settings_oob(request, run, submitted)
    return HTMLResponse(bytes(message.body).decode() + panel)


@router.post("/ui/runs/{run_id}/duplicate", response_model=None)
async def duplicate_run(request: Request, run_id: str) -> Response:
    """Keep a copy of this run (config, data, weights, metrics), then show the copy."""
    try:
        view = await _manager(request).duplicate(run_id)
    except ProblemError as exc:
        return _message(request, exc.detail, error=True)
    return Response(status_code=200, headers={"HX-Redirect": f"/runs/{view.id}"})


@router.post("/ui/runs/{run_id}/train-more", response_class=HTMLResponse)
async def train_more(request: Request, run_id: str) -> HTMLResponse:
    """A completed run trains on: its epoch target grows by its own size, then it starts."""
    manager = _manager(request)
    try:
        config = manager.get(run_id).public()["config"]
        epochs = settings.more_epochs(int(config["epochs"]))
        await manager.patch(run_id, RunPatch.model_validate({"epochs": epochs}))
        await manager.start(run_id)
    except ProblemError as exc:
        return _message(request, exc.detail, error=True)
    return _message(request, f"training on to epoch {epochs:,}")


# ---------------------------------------------------------------- compare and descent


@router.get("/compare", response_class=HTMLResponse)
async def compare(request: Request, runs: Annotated[list[str], Query()] = []) -> HTMLResponse:  # noqa: B006
    run_ids = pages.parse_run_ids(runs)
    context = pages.compare_context(_manager(request), run_ids)
    query = urlencode({"runs": ",".join(run_ids)})
    context |= {"title": "Compare", "active": "compare", "query": query}
    return _page(request, "pages/compare.html", context)


@router.get("/ui/compare-chart", response_class=HTMLResponse)
async def compare_chart(request: Request, runs: Annotated[list[str], Query()] = []) -> HTMLResponse:  # noqa: B006
    """The compare page's chart and legend, polled every 2 s while runs train."""
    context = pages.compare_context(_manager(request), pages.parse_run_ids(runs))
    return _page(request, "partials/compare_chart.html", context)


@router.get("/descent", response_class=HTMLResponse)
async def descent_page(
    request: Request,
    lr: float = descent.DEFAULT_LR,
    x0: float = descent.DEFAULT_X0,
    step: int = 0,
) -> HTMLResponse:
    frame = descent.frame_context(lr, x0, step, playing=False)
    return _page(
        request,
        "pages/descent.html",
        {"title": "Gradient descent", "active": "descent", "frame": frame},
    )


@router.get("/ui/descent/frame", response_class=HTMLResponse)
async def descent_frame(
    request: Request,
    lr: float = descent.DEFAULT_LR,
    x0: float = descent.DEFAULT_X0,
    step: int = 0,
    play: int = 0,
) -> HTMLResponse:
    frame = descent.frame_context(lr, x0, step, playing=bool(play))
    response = _page(request, "partials/descent_frame.html", {"frame": frame})
    # htmx rewrites the address bar (history.replaceState): the URL shares the setup.
    response.headers["HX-Replace-Url"] = frame["page_url"]
    return response

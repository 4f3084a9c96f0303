"""The HTML dashboard: server-rendered Jinja2 + SVG pages, live over SSE with htmx.

Imports ``app.runs`` (and ``app.nn`` for the dataset preview, the descent page
and neuron maps), never ``app.api``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from app.config import Settings


def install_ui(app: FastAPI, settings: Settings) -> None:
    """Set up the templates and the shared frame cache on ``app.state.ui``; add the routes."""
    # Imported here so `app.ui.render` (pure) can be used without the web stack.
    from fastapi.templating import Jinja2Templates
    from jinja2 import Environment, FileSystemLoader

    from app.ui import (
        draw,
        edit_routes,
        history,
        inspect,
        routes,
        shortcut,
        stream,
        sweeps,
        teacher_view,
        watch,
    )
    from app.ui.frames import FrameCache

    env = Environment(
        loader=FileSystemLoader(settings.templates_dir),
        autoescape=True,  # every template, .html or not: user strings are always escaped
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates = Jinja2Templates(env=env)
    app.state.ui = routes.UiState(templates=templates, frames=FrameCache(env))
    app.include_router(routes.router)
    app.include_router(edit_routes.router)
    app.include_router(shortcut.router)
    app.include_router(stream.router)
    app.include_router(inspect.router)
    app.include_router(draw.router)
    app.include_router(sweeps.router)  # /sweeps/{id}, the sweeps list, Create sweep
    app.include_router(watch.router)  # the classroom: /watch/{id} and the share dialog
    app.include_router(history.router)  # /runs/{id}/history: the weight history
    app.include_router(teacher_view.router)  # /runs/{id}/teacher: teacher beside student

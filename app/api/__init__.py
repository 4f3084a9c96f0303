"""The JSON API under /api (API.md): routes, errors and the body-size limit."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from app.api import (
    datasets,
    diagnostics,
    editing,
    events,
    exports,
    health,
    inspect,
    runs,
    sweeps,
    viewer,
)
from app.api.errors import install_error_handlers
from app.api.limits import BodySizeLimitMiddleware, StreamLimitMiddleware
from app.config import Settings


def install_api(app: FastAPI, settings: Settings) -> None:
    """Mount every /api route on ``app`` and install the error mapping and body limit."""
    api = APIRouter(prefix="/api")
    api.include_router(runs.router)
    api.include_router(sweeps.router)  # sweeps (API.md v1.1)
    api.include_router(editing.router)
    api.include_router(exports.router)  # export.npz, CSVs, import
    api.include_router(viewer.router)  # watch-only links (classroom)
    api.include_router(inspect.router)
    api.include_router(events.router)
    api.include_router(datasets.router)
    api.include_router(health.router)
    api.include_router(diagnostics.router)
    app.include_router(api)
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        body_timeout=settings.body_timeout,
    )
    # Counts the UI's streams too (/ui/runs/{id}/stream): both hold a connection each.
    app.add_middleware(StreamLimitMiddleware, max_streams=settings.max_streams_per_client)

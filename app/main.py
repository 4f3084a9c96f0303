"""Application factory: the only module that sees every layer."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.api import install_api
from app.config import Settings
from app.docs_page import install_docs
from app.runs.manager import RunManager
from app.runs.shutdown import chain_shutdown_signals
from app.security import install_security
from app.storage.store import open_store
from app.ui import install_ui

FRONTEND_PACKAGES = ("htmx.org/dist", "htmx-ext-sse/dist", "swagger-ui-dist")
# The files the pages load from them (templates/base.html, app/docs_page.py); an
# installed wheel ships exactly these (pyproject.toml).
FRONTEND_FILES = (
    "htmx.org/dist/htmx.min.js",
    "htmx-ext-sse/dist/sse.js",
    "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui-dist/swagger-ui.css",
)
# The event loop shares the GIL with the pipe readers (unpickling frames) and the store's
# writer (building metric rows). A thread that wants the GIL waits up to the switch
# interval for a busy one to give it up: CPython's 5 ms default was /api/health's p99
# while 4 runs trained (benchmarks/README.md). 0.5 ms bounds that wait.
GIL_SWITCH_INTERVAL = 0.0005


class SetupError(RuntimeError):
    """The installation is incomplete (e.g. `npm ci` has not run)."""


def _check_frontend(settings: Settings) -> None:
    missing = [p for p in FRONTEND_PACKAGES if not (settings.node_modules / p).is_dir()]
    if missing:
        raise SetupError(
            f"front-end packages missing in {settings.node_modules}: {', '.join(missing)}. "
            "Run `npm ci` (or `make run`, which does it) in the project folder."
        )
    files = [f for f in FRONTEND_FILES if not (settings.node_modules / f).is_file()]
    if files:
        raise SetupError(
            f"front-end files missing in {settings.node_modules}: {', '.join(files)}. "
            "Run `npm ci` in the project folder (a wheel must be built after it)."
        )
    for name, folder in (("templates", settings.templates_dir), ("static", settings.static_dir)):
        if not folder.is_dir():
            raise SetupError(f"{name} folder missing: {folder} (an incomplete installation)")


@asynccontextmanager
async def _running(settings: Settings, app: FastAPI) -> AsyncIterator[None]:
    """The store and the run manager, for the app's life."""
    store = open_store(settings.db)
    try:
        manager = RunManager(store, settings)
        await manager.startup()
        chain_shutdown_signals(manager.begin_shutdown)
        app.state.store = store
        app.state.manager = manager
        try:
            yield
        finally:
            await manager.shutdown()
    finally:
        store.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    _check_frontend(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        try:  # restored even when the store or the manager cannot start
            async with _running(settings, app):
                yield
        finally:
            sys.setswitchinterval(switch_interval)

    app = FastAPI(
        title="Backprop Live",
        version="1.0",
        description="Train multilayer perceptrons on the server and watch them learn.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    install_api(app, settings)
    install_ui(app, settings)
    install_security(app, settings)
    install_docs(app, settings)
    app.mount(
        "/static/vendor/htmx",
        StaticFiles(directory=settings.node_modules / "htmx.org" / "dist"),
        name="htmx",
    )
    app.mount(
        "/static/vendor/htmx-ext-sse",
        StaticFiles(directory=settings.node_modules / "htmx-ext-sse" / "dist"),
        name="htmx-ext-sse",
    )
    app.mount("/static", StaticFiles(directory=settings.static_dir), name="static")
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn app.main:app` works without building an app (and reading the
    # environment) at import time.
    if name == "app":
        return create_app()
    raise AttributeError(name)

"""Interactive API docs (/docs) served from the npm package, not a CDN.

FastAPI's built-in page loads Swagger UI from a CDN and starts it with an
inline script; both break on an offline machine and under our CSP. This page
loads `swagger-ui-dist` from node_modules and starts it from a static file.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.config import Settings

DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Backprop Live API</title>
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
</head><body><div id="swagger-ui" data-openapi-url="/openapi.json"></div>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js"></script>
</body></html>"""


def install_docs(app: FastAPI, settings: Settings) -> None:
    """Mounts Swagger UI's files and the /docs page (call before mounting /static)."""
    app.mount(
        "/static/vendor/swagger-ui",
        StaticFiles(directory=settings.node_modules / "swagger-ui-dist"),
        name="swagger-ui",
    )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_HTML)

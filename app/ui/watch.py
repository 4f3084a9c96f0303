"""The classroom: the watch-only page of a run and the live view's share dialog.

``/watch/{id}`` is the live view without a control that changes the run: the same
stream (``/ui/runs/{id}/stream``) fills it, but the page has no place for the
controls and settings fragments (static/classroom.js drops them before htmx swaps
them in) and hides the diagram's edit buttons. In token mode a student opens it
with the run's watch-only key (app.viewer_keys; app.security lets the key through).

``/ui/runs/{id}/share`` is the dialog that shows the link (absolute) and its QR code,
drawn on the server as SVG by segno, so it works without a network.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from app.runs.errors import ProblemError
from app.viewer_keys import viewer_key, watch_url

router = APIRouter(include_in_schema=False)

# The live view's fragments that change the run: the watch page has no place for them.
CONTROL_FRAGMENTS = ("controls", "settings")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    templates = request.app.state.ui.templates
    return templates.TemplateResponse(request, name, context, status_code=status)  # type: ignore[no-any-return]


def _missing(request: Request) -> HTMLResponse:
    context = {
        "title": "Not found",
        "active": "",
        "message": "There is no run with this id (it may have been deleted).",
    }
    return _page(request, "pages/not_found.html", context, 404)


@router.get("/watch/{run_id}", response_class=HTMLResponse)
async def watch_page(request: Request, run_id: str, key: str = "") -> HTMLResponse:
    """The run's live view, watch-only (the key rides on to the stream's URL)."""
    manager, frames = request.app.state.manager, request.app.state.ui.frames
    try:
        rendered = await frames.current_async(manager, run_id)
    except ProblemError:
        return _missing(request)
    run = manager.hub(run_id).run_view.public()
    fragments = {
        name: Markup(html)  # rendered from the autoescaped live_* partials
        for name, html in rendered.fragments.items()
        if name not in CONTROL_FRAGMENTS
    }
    stream = f"/ui/runs/{run_id}/stream" + (f"?key={quote(key, safe='')}" if key else "")
    context = {
        "title": f"Watch: {run['name']}",
        "active": "",
        "run": run,
        "fragments": fragments,
        "rd": frames.states[run_id].data,
        "stream_url": stream,
    }
    return _page(request, "pages/watch.html", context)


def qr_svg(text: str) -> Markup:
    """``text`` as a QR code: inline SVG that scales with its box (a viewBox, no size)."""
    code = segno.make(text, error="m")
    svg = code.svg_inline(
        scale=1,
        border=4,
        omitsize=True,
        svgclass="qr",
        lineclass="qr-dark",
        dark="#000",
        light="#fff",
        title="QR code of the watch link",
    )
    return Markup(svg)  # segno writes only numbers and the fixed strings above


def share_context(request: Request, run_id: str, run_name: str) -> dict[str, Any]:
    key = viewer_key(request.app.state.settings.token, run_id)
    origin = f"{request.url.scheme}://{request.url.netloc}"
    link = origin + watch_url(run_id, key)
    return {
        "run_name": run_name,
        "link": link,
        "qr": qr_svg(link),
        "loopback": (request.url.hostname or "") in LOOPBACK_NAMES,
        "token": request.app.state.settings.token is not None,
    }


@router.get("/ui/runs/{run_id}/share", response_class=HTMLResponse)
async def share_dialog(request: Request, run_id: str) -> HTMLResponse:
    """The "Share with a class" dialog: the watch link, a copy button and its QR code."""
    try:
        run = request.app.state.manager.get(run_id).public()
    except ProblemError as exc:
        body = f'<p class="msg-error">{escape(exc.detail)}</p>'
        return HTMLResponse(body, status_code=exc.status_code)
    context = share_context(request, run_id, run["name"])
    return _page(request, "partials/share_dialog.html", context)

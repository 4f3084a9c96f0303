"""GET /ui/runs/{id}/stream: the live view's HTML fragments over server-sent events.

First a ``snapshot`` event (every fragment), then a ``frame`` event per hub
version with the fragments that changed since the viewer's last one, at most
``MAX_FPS`` a second: a slow viewer skips frames instead of queueing them.
Every fragment is an element with ``hx-swap-oob="innerHTML"``, which htmx's
SSE extension swaps into the container with the same id. A reconnect (after a
network drop or a server restart) simply gets a new snapshot. When the run is
deleted the stream sends ``deleted`` (the page closes its EventSource on it) and ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from app.runs import sse
from app.runs.errors import ProblemError
from app.ui.frames import FrameCache, sse_event

router = APIRouter(include_in_schema=False)

MAX_FPS = 20.0
RETRY_MS = 1000  # EventSource reconnect delay after a dropped connection


def deleted_message() -> bytes:
    html = (
        '<div id="stats" hx-swap-oob="innerHTML"><p class="status-message status-failed" '
        'id="status-message">This run was deleted. <a href="/">Back to the runs</a></p></div>'
    )
    return sse_event("deleted", html)


async def fragment_stream(
    manager: Any,
    frames: FrameCache,
    run_id: str,
    hub: Any,
    ping: float,
) -> AsyncIterator[bytes]:
    """The event stream of one viewer (see the module docstring).

    Ends when the run is deleted (after a ``deleted`` event) or, silently, when
    the server shuts down (the browser reconnects to the next server).
    """
    shown = [0]  # the hub resets the viewer's page shows
    # A reset (or a structural change) is drawn at once: the learner just acted.
    loop = sse.Subscription(
        hub,
        lambda: manager.shutting_down,
        max_fps=MAX_FPS,
        ping_interval=ping,
        urgent=lambda: hub.resets != shown[0],
    )
    with hub.subscription(), frames.subscribe(run_id):
        rendered = await frames.current_async(manager, run_id)
        # The reconnect delay rides on the first event (a block without data dispatches nothing).
        yield f"retry: {RETRY_MS}\n".encode() + rendered.snapshot_message()
        seen, resets = rendered.version, rendered.resets
        shown[0] = resets
        async for tick in loop.ticks(seen):
            if tick is sse.Tick.PING:
                yield sse.PING
                continue
            if tick is sse.Tick.CLOSED:
                yield deleted_message()
                return
            try:
                rendered = await frames.current_async(manager, run_id)
            except ProblemError:
                yield deleted_message()
                return
            if rendered.resets != resets:
                message: bytes | None = rendered.snapshot_message()
            else:
                message = rendered.frame_message(seen)
            seen, resets = rendered.version, rendered.resets
            shown[0] = resets
            if message is not None:
                yield message


@router.get("/ui/runs/{run_id}/stream", response_model=None)
async def run_stream(request: Request, run_id: str) -> Response:
    manager = request.app.state.manager
    try:
        hub = manager.hub(run_id)
    except ProblemError as exc:
        return Response(status_code=exc.status_code)
    frames: FrameCache = request.app.state.ui.frames
    ping = float(request.app.state.settings.sse_ping_interval)
    return StreamingResponse(
        fragment_stream(manager, frames, run_id, hub, ping),
        media_type="text/event-stream",
        headers=sse.HEADERS,
    )

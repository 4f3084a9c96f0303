"""GET /api/runs/{id}/events: the run's live state as server-sent events (API.md).

One subscriber is one async generator with its own cursor (the last epoch the
client has). It awaits the run's hub, then — at most ``max_fps`` times a
second — reads every epoch after its cursor from the hub's append-only
history. Nothing is queued per subscriber: a slow client's generator is simply
suspended in ``send`` while the history grows, and its next frame carries all
the epochs it missed. Memory per subscriber is O(1) whatever the client's speed.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from starlette.requests import Request
from starlette.responses import StreamingResponse

from app.api.deps import Manager
from app.api.schemas import ERROR_RESPONSES
from app.runs.manager import RunManager

router = APIRouter(tags=["events"])

# API.md: for networks over 100,000 parameters (`hub.large`) `layers` may be sent
# less often than every frame, but at least once a second and before every
# status change.
LARGE_NETWORK_LAYERS_INTERVAL = 1.0

SSE_HEADERS = {
    "cache-control": "no-cache",
    # Reverse proxies (nginx) would otherwise buffer the stream.
    "x-accel-buffering": "no",
}


def event(name: str, event_id: int, data: bytes) -> bytes:
    """One SSE event; orjson never emits a newline, so `data:` stays one line."""
    return b"event: %s\nid: %d\ndata: %s\n\n" % (name.encode(), event_id, data)


PING = b": ping\n\n"


def _parse_last_event_id(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        parsed = int(value.strip())
    except ValueError:
        return None  # API.md: a non-integer Last-Event-ID is ignored
    return parsed if parsed >= 0 else None


@router.get(
    "/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "`snapshot`, then `epoch` frames and `status` events; `: ping` comments",
        },
        404: ERROR_RESPONSES[404],
        422: ERROR_RESPONSES[422],
    },
    summary="Live training state as server-sent events",
)
async def run_events(
    run_id: str,
    request: Request,
    manager: Manager,
    weights: Annotated[bool, Query(description="include `layers` in frames")] = True,
    max_fps: Annotated[int, Query(ge=1, le=60, description="frames per second at most")] = 20,
    last_event_id: Annotated[str | None, Header(alias="last-event-id")] = None,
) -> StreamingResponse:
    manager.get(run_id)  # 404 before the stream starts
    ping_interval = float(request.app.state.settings.sse_ping_interval)
    stream = RunEventStream(
        manager,
        run_id,
        cursor=_parse_last_event_id(last_event_id),
        with_layers=weights,
        max_fps=max_fps,
        ping_interval=ping_interval,
    )
    return StreamingResponse(stream.events(), media_type="text/event-stream", headers=SSE_HEADERS)


class RunEventStream:
    """The state of one subscriber: its cursor and what it was last told."""

    def __init__(
        self,
        manager: RunManager,
        run_id: str,
        *,
        cursor: int | None,
        with_layers: bool,
        max_fps: int,
        ping_interval: float,
    ) -> None:
        self.hub = manager.hub(run_id)
        self.manager = manager
        self.resume_from = cursor
        self.cursor = 0
        self.with_layers = with_layers
        self.min_gap = 1.0 / max_fps
        self.ping_interval = ping_interval
        self.status_seq = 0
        self.resets = 0
        self.last_frame_at = 0.0
        self.last_layers_at = -math.inf
        # The last epoch frame went out without `layers` (large networks only).
        self.layers_pending = False

    async def events(self) -> AsyncIterator[bytes]:
        hub = self.hub
        if hub.closed:
            return
        with hub.subscription():
            version = hub.version
            yield self._snapshot(self.resume_from)
            while not self._ended():
                new_version = await hub.wait(version, self.ping_interval)
                if self._ended():
                    break
                if new_version == version:
                    yield PING
                    continue
                version = new_version
                # Epoch frames are coalesced to max_fps: wait out the gap, but wake on
                # every hub change so that status changes and resets go out at once.
                # The gaps end on a shared clock grid, so subscribers of a run wake
                # together, at the same cursor, and share one encoded frame.
                due = (math.floor(self.last_frame_at / self.min_gap) + 1) * self.min_gap
                while not self._urgent() and (now := time.monotonic()) < due:
                    version = await hub.wait(version, due - now)
                if self._ended():
                    break
                if hub.resets != self.resets:
                    yield self._snapshot(None)
                    continue
                for chunk in self._updates():
                    yield chunk

    def _ended(self) -> bool:
        """The run was deleted, or the server is shutting down."""
        return self.hub.closed or self.manager.shutting_down

    def _urgent(self) -> bool:
        hub = self.hub
        return self._ended() or hub.resets != self.resets or hub.status_seq != self.status_seq

    def _snapshot(self, after: int | None) -> bytes:
        """The `snapshot` event: the run, its weights and the metrics of epochs > ``after``."""
        hub = self.hub
        since = after or 0
        self.resets = hub.resets
        self.cursor = max(since, hub.last_epoch)
        self.status_seq = hub.status_seq
        self.last_frame_at = self.last_layers_at = time.monotonic()
        self.layers_pending = False
        return event("snapshot", self.cursor, hub.snapshot_json(since))

    def _updates(self) -> list[bytes]:
        """Every status change and an `epoch` frame with the epochs after the cursor, in
        the order they happened: a change recorded at or before the cursor goes out
        before the new epochs, a later one after them."""
        hub = self.hub
        changes = hub.statuses_since(self.status_seq)
        self.status_seq = hub.status_seq
        out: list[bytes] = []
        later: list[bytes] = []
        for _, at_epoch, data in changes:
            if at_epoch > self.cursor:
                later.append(data)
                continue
            # API.md: the last frame before a status change carries the weights.
            if self.layers_pending:
                out.append(self._frame(with_layers=True))
            out.append(event("status", self.cursor, data))
        if hub.last_epoch > self.cursor:
            now = time.monotonic()
            with_layers = self.with_layers and self._layers_due(now, bool(later))
            out.append(self._frame(with_layers))
        out += [event("status", self.cursor, data) for data in later]
        return out

    def _frame(self, with_layers: bool) -> bytes:
        """An `epoch` frame with every epoch after the cursor (none for a weights-only one)."""
        hub = self.hub
        now = time.monotonic()
        if with_layers:
            self.last_layers_at = now
        self.layers_pending = self.with_layers and not with_layers
        epoch = max(hub.last_epoch, self.cursor)
        frame = event("epoch", epoch, hub.frame_json(self.cursor, with_layers))
        self.cursor = epoch
        self.last_frame_at = now
        return frame

    def _layers_due(self, now: float, status_changed: bool) -> bool:
        if status_changed or not self.hub.large:
            return True
        return now - self.last_layers_at >= LARGE_NETWORK_LAYERS_INTERVAL

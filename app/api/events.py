"""GET /api/runs/{id}/events: the run's live state as server-sent events (API.md).

One subscriber is one async generator with its own cursor (the last epoch the
client has). Its loop (app.runs.sse.Subscription, shared with the live view's
stream) awaits the run's hub; at most ``max_fps`` times a second it reads every
epoch after its cursor from the hub's append-only history. Nothing is queued
per subscriber: a slow client's generator is simply suspended in ``send`` while
the history grows, and its next frame carries all the epochs it missed. Memory
per subscriber is O(1) whatever the client's speed.
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
from app.runs import sse
from app.runs.manager import RunManager

router = APIRouter(tags=["events"])

# API.md: for networks over 100,000 parameters (`hub.large`) `layers` may be sent
# less often than every frame, but at least once a second and before every
# status change.
LARGE_NETWORK_LAYERS_INTERVAL = 1.0

SSE_HEADERS = sse.HEADERS


def event(name: str, event_id: int, data: bytes) -> bytes:
    """One SSE event; orjson never emits a newline, so `data:` stays one line."""
    return sse.encode(name, data, event_id)


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
        self.status_seq = 0
        self.resets = 0
        self.last_layers_at = -math.inf
        # The last epoch frame went out without `layers` (large networks only); its
        # run's last epoch is then held back for the frame that carries them.
        self.layers_pending = False
        self.loop = sse.Subscription(
            self.hub,
            lambda: manager.shutting_down,
            max_fps=max_fps,
            ping_interval=ping_interval,
            urgent=self._urgent,
        )

    async def events(self) -> AsyncIterator[bytes]:
        hub = self.hub
        if hub.closed:
            return
        with hub.subscription():
            version = hub.version
            yield self._snapshot(self.resume_from)
            async for tick in self.loop.ticks(version):
                if tick is sse.Tick.PING:
                    yield sse.PING
                elif tick is sse.Tick.FRAME:
                    if hub.resets != self.resets:
                        yield self._snapshot(None)
                        continue
                    for chunk in self._updates():
                        yield chunk

    def _urgent(self) -> bool:
        hub = self.hub
        return hub.resets != self.resets or hub.status_seq != self.status_seq

    def _snapshot(self, after: int | None) -> bytes:
        """The `snapshot` event: the run, its weights and the metrics of epochs > ``after``."""
        hub = self.hub
        since = after or 0
        self.resets = hub.resets
        self.cursor = max(since, hub.last_epoch)
        self.status_seq = hub.status_seq
        self.loop.last_frame_at = self.last_layers_at = time.monotonic()
        self.layers_pending = False
        return event("snapshot", self.cursor, hub.snapshot_json(since))

    def _updates(self) -> list[bytes]:
        """Every status change and an `epoch` frame with the epochs after the cursor, in
        the order they happened: a change recorded at or before the cursor goes out
        before the new epochs, a later one after them.

        API.md: the last frame before a status change carries the weights. A frame
        without them (a large network between its once-a-second `layers`) leaves the
        run's last epoch out, so that a status change at that epoch finds an epoch for
        the frame with the weights to carry; every `epoch` frame has a new epoch.
        """
        hub = self.hub
        changes = hub.statuses_since(self.status_seq)
        self.status_seq = hub.status_seq
        out: list[bytes] = []
        later: list[bytes] = []
        for _, at_epoch, data in changes:
            if at_epoch > self.cursor:
                later.append(data)
                continue
            out.append(event("status", self.cursor, data))
        if hub.last_epoch > self.cursor:
            now = time.monotonic()
            with_layers = not self.with_layers or self._layers_due(now, bool(later))
            if with_layers:
                out.append(self._frame(self.with_layers, None))
            elif hub.last_epoch - 1 > self.cursor:
                out.append(self._frame(False, hub.last_epoch - 1))
        out += [event("status", self.cursor, data) for data in later]
        return out

    def _frame(self, with_layers: bool, until: int | None) -> bytes:
        """An `epoch` frame with every epoch after the cursor (up to ``until``)."""
        hub = self.hub
        if with_layers:
            self.last_layers_at = time.monotonic()
        self.layers_pending = self.with_layers and not with_layers
        last = hub.last_epoch if until is None else until
        epoch = max(last, self.cursor)
        frame = event("epoch", epoch, hub.frame_json(self.cursor, with_layers, until))
        self.cursor = epoch
        return frame

    def _layers_due(self, now: float, status_changed: bool) -> bool:
        if status_changed or not self.hub.large:
            return True
        return now - self.last_layers_at >= LARGE_NETWORK_LAYERS_INTERVAL

"""Server-sent events shared by both streams of a run: the JSON one (/api/runs/{id}/events)
and the live view's HTML one (/ui/runs/{id}/stream).

``encode`` writes one event; ``Subscription.ticks`` is the loop of one subscriber:
it awaits the run's hub, coalesces changes to at most ``max_fps`` frames a second
on a clock grid shared by every subscriber (so the subscribers of a run wake
together, at the same cursor, and share one encoded frame), sends a ping when
the hub stays quiet for ``ping_interval`` seconds, and ends when the run is
deleted or the server shuts down. What a frame holds is the caller's business.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

PING = b": ping\n\n"
HEADERS = {
    "cache-control": "no-cache",
    # Reverse proxies (nginx) would otherwise buffer the stream.
    "x-accel-buffering": "no",
}


def encode(name: str, data: bytes | str, event_id: int | None = None) -> bytes:
    """One SSE event; a multi-line payload becomes several ``data:`` lines (SSE spec)."""
    raw = data.encode() if isinstance(data, str) else data
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    body = b"".join(b"data: %s\n" % line for line in raw.split(b"\n"))
    head = b"event: %s\n" % name.encode()
    if event_id is not None:
        head += b"id: %d\n" % event_id
    return head + body + b"\n"


class Hub(Protocol):
    """What the loop needs of a run's hub (app.runs.broadcast.RunHub)."""

    version: int
    closed: bool

    async def wait(self, seen_version: int, timeout: float | None) -> int: ...


class Tick(enum.Enum):
    FRAME = "frame"  # the hub changed and a frame is due: send what is new
    PING = "ping"  # nothing happened for ping_interval seconds
    CLOSED = "closed"  # the run was deleted (the last tick)


class Subscription:
    """The wait-coalesce-ping loop of one subscriber (see the module docstring)."""

    def __init__(
        self,
        hub: Hub,
        shutting_down: Callable[[], bool],
        *,
        max_fps: float,
        ping_interval: float,
        urgent: Callable[[], bool] = lambda: False,
    ) -> None:
        self.hub = hub
        self.shutting_down = shutting_down
        self.min_gap = 1.0 / max_fps
        self.ping_interval = ping_interval
        # A change for which the caller will not wait out the gap (a status change, a reset).
        self.urgent = urgent
        self.last_frame_at = time.monotonic()

    def _ended(self) -> bool:
        return self.hub.closed or self.shutting_down()

    def next_due(self) -> float:
        """When the next frame may start: the grid point after the last frame."""
        return (math.floor(self.last_frame_at / self.min_gap) + 1) * self.min_gap

    async def ticks(self, seen_version: int) -> AsyncIterator[Tick]:
        """FRAME, PING, ... then CLOSED if the run was deleted; ends silently on shutdown.

        ``seen_version``: the hub version the caller's last message (its snapshot) showed.
        """
        hub = self.hub
        version = seen_version
        while not self._ended():
            new_version = await hub.wait(version, self.ping_interval)
            if self._ended():
                break
            if new_version == version:
                yield Tick.PING
                continue
            version = new_version
            # Wait out the gap, but wake on every hub change so that urgent ones go out at once.
            due = self.next_due()
            while not self.urgent() and not self._ended() and (now := time.monotonic()) < due:
                version = await hub.wait(version, due - now)
            if self._ended():
                break
            self.last_frame_at = time.monotonic()
            yield Tick.FRAME
        if hub.closed and not self.shutting_down():
            yield Tick.CLOSED

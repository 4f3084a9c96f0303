"""Limits that protect the machine, as pure ASGI middleware (no buffering, streams untouched).

``BodySizeLimitMiddleware``: a body announced larger than the limit
(``Content-Length``) is refused with 413 before anything reads it; a chunked
body is counted while it streams and refused as soon as it crosses the limit.
A body that has not fully arrived ``body_timeout`` seconds after the request's
headers (a slow-loris trickle) is refused with 408 and the connection closed.
Whatever the application had started to answer is then dropped in favour of
the refusal.

``LargeBodyGateMiddleware``: at most ``BodyGate.slots`` (2) requests with a
large body (over ``LARGE_BODY_BYTES``, 1 MB) are handled at once: parsing a
32 MB JSON body takes a few hundred MB of Python objects, so ten at once could
exhaust the machine. A body announced large (``Content-Length``) waits for a
slot before anything reads it, at most ``BodyGate.wait`` seconds (10), then is
refused with 503 and ``Retry-After``; a chunked body waits for a slot once it
passes 1 MB (its own body deadline bounds that wait: 408). The slot is held
until the response is sent.

``StreamLimitMiddleware``: at most ``max_streams`` open SSE streams
(``/api/runs/{id}/events``, ``/ui/runs/{id}/stream``) per client address; one
more is refused with 429. Each stream holds a connection, a task and a hub
subscription for as long as the client keeps it open, so one client could
otherwise exhaust the server's file descriptors.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.responses import dumps

# A refused body up to this multiple of the limit is read and discarded before the
# answer (see `_drain`); a larger one is refused at once.
DRAIN_FACTOR = 2
# ...as long as it keeps coming: a client that stops sending for this long gets the answer.
DRAIN_IDLE_TIMEOUT = 1.0
LARGE_BODY_BYTES = 1024 * 1024  # a body over this waits for one of BodyGate's slots
STREAM_PATH = re.compile(r"^/(?:api/runs/[^/]+/events|ui/runs/[^/]+/stream)/?$")


class _Refused(Exception):
    """Raised from ``receive`` once the body is refused (too large, too slow)."""


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, body_timeout: float = 30.0) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.body_timeout
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            if declared <= DRAIN_FACTOR * self.max_body_bytes:
                await _drain(receive, deadline, declared)
            await self._refuse(send, *self._too_large())
            return

        received = 0
        body_complete = False
        refusal: tuple[int, str] | None = None
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, body_complete, refusal
            if body_complete:
                return await receive()  # e.g. a streaming response waiting for the disconnect
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0))
            except TimeoutError:
                refusal = (
                    408,
                    f"request body not received within {self.body_timeout:g} s",
                )
                raise _Refused from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_complete = not message.get("more_body", False)
                if received > self.max_body_bytes:
                    refusal = self._too_large()
                    raise _Refused
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refusal is not None:
                # The application turned our exception into some other error
                # response; the client must see the refusal instead.
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _Refused:
            pass
        except Exception:
            if refusal is None:
                raise
        if refusal is not None and not response_started:
            if refusal[0] == 413 and not body_complete:
                await _drain(receive, deadline, self.max_body_bytes * (DRAIN_FACTOR - 1))
            await self._refuse(send, *refusal)

    def _too_large(self) -> tuple[int, str]:
        return 413, f"request body too large: the limit is {self.max_body_bytes} bytes"

    async def _refuse(self, send: Send, status: int, detail: str) -> None:
        await _send_json(send, status, detail, [(b"connection", b"close")])


@dataclass(frozen=True)
class BodyGateStats:
    """What `GET /api/diagnostics` reports under `large_bodies`."""

    slots: int
    in_flight: int
    waiting: int
    peak: int  # most large bodies in flight at once since start-up
    admitted: int
    refused: int


class BodyGate:
    """The slots the large bodies share (one per app; the diagnostics read it)."""

    def __init__(self, slots: int = 2, wait: float = 10.0) -> None:
        self.slots = slots
        self.wait = wait
        self._semaphore = asyncio.Semaphore(slots)
        self.in_flight = self.waiting = self.peak = self.admitted = self.refused = 0

    async def enter(self, timeout: float | None) -> bool:
        """Take a slot, waiting at most ``timeout`` seconds (None: as long as it takes)."""
        self.waiting += 1
        try:
            await asyncio.wait_for(self._semaphore.acquire(), timeout)
        except TimeoutError:
            self.refused += 1
            return False
        finally:
            self.waiting -= 1
        self.in_flight += 1
        self.admitted += 1
        self.peak = max(self.peak, self.in_flight)
        return True

    def leave(self) -> None:
        self.in_flight -= 1
        self._semaphore.release()

    def stats(self) -> BodyGateStats:
        return BodyGateStats(
            self.slots, self.in_flight, self.waiting, self.peak, self.admitted, self.refused
        )


class LargeBodyGateMiddleware:
    """See the module docstring; install it outside BodySizeLimitMiddleware, so a
    body's deadline starts once it is admitted."""

    def __init__(self, app: ASGIApp, gate: BodyGate, max_body_bytes: int) -> None:
        self.app = app
        self.gate = gate
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:
            if not LARGE_BODY_BYTES < declared <= self.max_body_bytes:
                await self.app(scope, receive, send)  # small, or refused (413) at once
                return
            if not await self.gate.enter(self.gate.wait):
                await _drain(receive, time.monotonic() + self.gate.wait, declared)
                detail = "the server is busy with other large requests; try again shortly"
                await _send_json(
                    send, 503, detail, [(b"retry-after", b"5"), (b"connection", b"close")]
                )
                return
            try:
                await self.app(scope, receive, send)
            finally:
                self.gate.leave()
            return
        await self._chunked(scope, receive, send)

    async def _chunked(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        admitted = False

        async def gated_receive() -> Message:
            nonlocal received, admitted
            message = await receive()
            if message["type"] == "http.request" and not admitted:
                received += len(message.get("body", b""))
                if received > LARGE_BODY_BYTES:
                    admitted = await self.gate.enter(None)
            return message

        try:
            await self.app(scope, gated_receive, send)
        finally:
            if admitted:
                self.gate.leave()


class StreamLimitMiddleware:
    """Counts open SSE streams per client address; refuses one over the limit with 429."""

    def __init__(self, app: ASGIApp, max_streams: int) -> None:
        self.app = app
        self.max_streams = max_streams
        self.open_streams: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not STREAM_PATH.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = str(client[0]) if client else "unknown"
        count = self.open_streams.get(key, 0)
        if count >= self.max_streams:
            detail = (
                f"too many open event streams from this client (limit {self.max_streams}); "
                "close one first"
            )
            await _send_json(send, 429, detail, [(b"retry-after", b"5")])
            return
        self.open_streams[key] = count + 1
        try:
            await self.app(scope, receive, send)
        finally:
            remaining = self.open_streams[key] - 1
            if remaining:
                self.open_streams[key] = remaining
            else:
                del self.open_streams[key]


async def _send_json(
    send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]]
) -> None:
    body = dumps({"detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _drain(receive: Receive, deadline: float, budget: int) -> None:
    """Read and discard the rest of a refused body: up to ``budget`` bytes, until
    ``deadline``, and only while it keeps arriving (``DRAIN_IDLE_TIMEOUT``).

    The refusal closes the connection; closing it with unread data makes the
    kernel send a reset, which can destroy the 413 before a client that is
    still uploading reads it. Draining first (bounded) lets the client finish
    its upload and see the answer.
    """
    drained = 0
    while drained <= budget:
        remaining = min(deadline - time.monotonic(), DRAIN_IDLE_TIMEOUT)
        if remaining <= 0:
            return
        try:
            message = await asyncio.wait_for(receive(), remaining)
        except TimeoutError:
            return
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None

"""Large request bodies share two slots (LargeBodyGateMiddleware)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from app.api.limits import LARGE_BODY_BYTES, BodyGate, LargeBodyGateMiddleware

MAX_BODY = 32 * 2**20


def request_scope(content_length: int | None) -> Scope:
    headers = [(b"host", b"localhost")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    else:
        headers.append((b"transfer-encoding", b"chunked"))
    return {"type": "http", "method": "POST", "path": "/api/runs", "headers": headers}


def body_of(size: int, chunk: int = 256 * 1024) -> Receive:
    """`receive` of a body of `size` bytes, in chunks."""
    sent = 0

    async def receive() -> Message:
        nonlocal sent
        n = min(chunk, size - sent)
        sent += n
        return {"type": "http.request", "body": b"x" * n, "more_body": sent < size}

    return receive


class Responses:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    def header(self, name: bytes) -> bytes | None:
        return dict(self.messages[0]["headers"]).get(name)


class Handler:
    """An app that reads the whole body, then holds it until `release` is set."""

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0
        self.release = asyncio.Event()
        self.changed = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        self.active += 1
        self.peak = max(self.peak, self.active)
        self.changed.set()
        await self.release.wait()
        self.active -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def until(condition: Any, event: asyncio.Event, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            event.clear()
            await event.wait()


def test_at_most_two_large_bodies_at_once_the_rest_wait_their_turn() -> None:
    async def scenario() -> None:
        handler = Handler()
        gate = BodyGate(slots=2, wait=30.0)
        app = LargeBodyGateMiddleware(handler, gate=gate, max_body_bytes=MAX_BODY)
        size = 2 * LARGE_BODY_BYTES
        sends = [Responses() for _ in range(5)]
        scopes = [request_scope(size)] * 3 + [request_scope(None)] * 2  # 2 chunked ones
        calls = [
            asyncio.create_task(app(scope, body_of(size), send))
            for scope, send in zip(scopes, sends, strict=True)
        ]
        await until(lambda: handler.active == 2 and gate.waiting == 3, handler.changed)
        assert gate.stats().in_flight == 2
        # A small body is not held up by the large ones.
        small = Responses()
        small_handler = Handler()
        small_handler.release.set()
        await LargeBodyGateMiddleware(small_handler, gate=gate, max_body_bytes=MAX_BODY)(
            request_scope(100), body_of(100), small
        )
        assert small.status == 200
        handler.release.set()
        await asyncio.gather(*calls)
        assert handler.peak == 2 and gate.peak == 2
        assert [s.status for s in sends] == [200] * 5
        assert gate.stats().admitted == 5 and gate.stats().in_flight == 0

    asyncio.run(scenario())


def test_a_large_body_that_waits_too_long_gets_503_with_retry_after() -> None:
    async def scenario() -> None:
        handler = Handler()
        gate = BodyGate(slots=1, wait=0.05)
        app = LargeBodyGateMiddleware(handler, gate=gate, max_body_bytes=MAX_BODY)
        size = LARGE_BODY_BYTES + 1
        first = asyncio.create_task(app(request_scope(size), body_of(size), Responses()))
        await until(lambda: handler.active == 1, handler.changed)
        late = Responses()
        await app(request_scope(size), body_of(size), late)
        assert late.status == 503 and late.header(b"retry-after") == b"5"
        assert "busy" in json.loads(late.messages[1]["body"])["detail"]
        assert gate.stats().refused == 1
        handler.release.set()
        await first

    asyncio.run(scenario())


def test_a_large_body_goes_through_the_gate_of_the_real_app(client: TestClient) -> None:
    n = 40_000  # ~1.6 MB of JSON: over the 1 MB line
    x = [[i / n, 1 - i / n] for i in range(n)]
    y = [i % 2 for i in range(n)]
    body = {"dataset": {"kind": "custom", "task": "classification", "x": x, "y": y}, "start": False}
    content = json.dumps(body).encode()
    assert len(content) > LARGE_BODY_BYTES
    response = client.post(
        "/api/runs", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
    gate = client.get("/api/diagnostics").json()["large_bodies"]
    assert gate == {
        "slots": 2,
        "in_flight": 0,
        "waiting": 0,
        "peak": 1,
        "admitted": 1,
        "refused": 0,
    }

"""Limits that protect the machine, each over real HTTP: stored runs, running runs,
SSE streams per client, body size and body deadline."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.reliability.support import raw_request, read_until
from tests.support import TINY_RUN, LiveServer, wait_until


@pytest.fixture
def limited(settings: Settings) -> Iterator[LiveServer]:
    tight = replace(
        settings, max_streams_per_client=3, max_stored_runs=4, max_running_runs=1, body_timeout=1.0
    )
    with LiveServer(create_app(tight)) as server:
        yield server


def test_stored_runs_limit_is_409_and_deleting_frees_a_slot(settings: Settings) -> None:
    with TestClient(create_app(replace(settings, max_stored_runs=3))) as client:
        ids = [
            client.post("/api/runs", json={**TINY_RUN, "start": False}).json()["id"]
            for _ in range(3)
        ]
        refused = client.post("/api/runs", json={**TINY_RUN, "start": False})
        assert refused.status_code == 409
        assert "3" in refused.json()["detail"] and "stored runs" in refused.json()["detail"]
        assert len(client.get("/api/runs").json()["runs"]) == 3  # nothing half-made
        assert client.delete(f"/api/runs/{ids[0]}").status_code == 204
        assert client.post("/api/runs", json={**TINY_RUN, "start": False}).status_code == 201


def test_running_runs_limit_is_409(settings: Settings) -> None:
    with TestClient(create_app(replace(settings, max_running_runs=1))) as client:
        endless = {**TINY_RUN, "epochs": 10_000_000, "max_epochs_per_second": 50}
        first = client.post("/api/runs", json=endless).json()
        assert first["status"] == "running"
        refused = client.post("/api/runs", json=endless)
        assert refused.status_code == 409 and "limit is 1" in refused.json()["detail"]
        idle = client.post("/api/runs", json={**endless, "start": False}).json()
        assert client.post(f"/api/runs/{idle['id']}/start").status_code == 409
        client.post(f"/api/runs/{first['id']}/stop")
        assert client.post(f"/api/runs/{idle['id']}/start").json()["status"] == "running"
        client.post(f"/api/runs/{idle['id']}/stop")


def _open_stream(client: httpx.Client, stack: ExitStack, path: str) -> httpx.Response:
    response = stack.enter_context(client.stream("GET", path))
    if response.status_code == 200:
        lines = response.iter_lines()
        next(lines)  # the stream is really open (first event line)
        # Keep the iterator: dropping it closes the response (httpx).
        stack.callback(lines.close)
    else:
        response.read()
    return response


def test_sse_streams_per_client_are_capped_with_429(limited: LiveServer) -> None:
    manager = limited.app.state.manager
    with limited.client() as client, ExitStack() as stack:
        run = client.post("/api/runs", json={**TINY_RUN, "start": False}).json()
        paths = [
            f"/api/runs/{run['id']}/events",
            f"/ui/runs/{run['id']}/stream",
            f"/api/runs/{run['id']}/events?weights=false",
        ]
        for path in paths:
            assert _open_stream(client, stack, path).status_code == 200
        for path in paths[:2]:  # both kinds of stream count against the same limit
            refused = _open_stream(client, stack, path)
            assert refused.status_code == 429
            assert "limit 3" in refused.json()["detail"]
            assert refused.headers["content-type"] == "application/json"
        # The rest of the API is unaffected, and another client address has its own budget.
        assert client.get(f"/api/runs/{run['id']}").status_code == 200
        with (
            httpx.Client(
                base_url=limited.url,
                transport=httpx.HTTPTransport(local_address="127.0.0.2"),
                timeout=30,
            ) as other,
            other.stream("GET", paths[0]) as response,
        ):
            assert response.status_code == 200
        # Closing a stream frees its slot.
        stack.close()
    wait_until(lambda: manager.hub(run["id"]).subscribers == 0, timeout=10, what="streams closed")
    with limited.client() as client, ExitStack() as stack:
        for path in paths:
            assert _open_stream(client, stack, path).status_code == 200


def test_announced_body_over_32_mb_is_413_even_if_never_sent(live_server: LiveServer) -> None:
    limit = 32 * 1024 * 1024
    sock = raw_request(
        live_server.port,
        b"POST /api/runs HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % (limit + 1),
    )
    with sock:
        head = read_until(sock, b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    with live_server.client() as client:
        assert client.get("/api/runs").json()["runs"] == []


def test_a_trickled_body_is_cut_off_with_408_and_others_are_served(limited: LiveServer) -> None:
    """Slow loris on the body: headers, a few bytes, then nothing."""
    body = json.dumps({**TINY_RUN, "start": False}).encode()
    head = (
        b"POST /api/runs HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    )
    started = time.monotonic()
    with raw_request(limited.port, head + body[:5]) as sock, limited.client() as client:
        # While it stalls, the server answers everybody else.
        for _ in range(5):
            assert client.get("/api/health").status_code == 200
        sock.settimeout(15)
        answer = read_until(sock, b"}")
        elapsed = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"not received within 1 s" in answer
        assert elapsed < 10  # the deadline (1 s here, 30 s by default) ended it
        # ...and the server closes the connection (a recv that hung would time out).
        assert sock.recv(65536) == b""
        assert client.get("/api/runs").json()["runs"] == []  # nothing half-made


def test_a_stalled_header_does_not_block_the_server(live_server: LiveServer) -> None:
    """Slow loris on the headers: uvicorn keeps the socket, but only that socket."""
    stalled = [
        raw_request(live_server.port, b"GET /api/health HTTP/1.1\r\nhost: localhost\r\nx-slow: ")
        for _ in range(20)
    ]
    try:
        with live_server.client() as client:
            for _ in range(10):
                assert client.get("/api/health").status_code == 200
            assert client.post("/api/runs", json={**TINY_RUN, "start": False}).status_code == 201
    finally:
        for sock in stalled:
            sock.close()


def test_body_limit_and_deadline_come_from_the_environment(database: str) -> None:
    settings = Settings.from_env(
        {
            "BACKPROP_LIVE_MAX_STREAMS_PER_CLIENT": "5",
            "BACKPROP_LIVE_BODY_TIMEOUT": "2.5",
            "BACKPROP_LIVE_MAX_STORED_RUNS": "7",
            "BACKPROP_LIVE_MAX_RUNNING_RUNS": "3",
            "BACKPROP_LIVE_MAX_BODY_BYTES": "1000",
        },
        db=database,
    )
    assert settings.max_streams_per_client == 5 and settings.body_timeout == 2.5
    assert settings.max_stored_runs == 7 and settings.max_running_runs == 3
    with TestClient(create_app(settings)) as client:
        big = client.post(
            "/api/runs", content=b" " * 1001, headers={"content-type": "application/json"}
        )
        assert big.status_code == 413 and "1000 bytes" in big.json()["detail"]

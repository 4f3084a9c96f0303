"""1,000 SSE connect/disconnect cycles against a live server leak nothing.

Every kind of client exit: a TCP reset after the snapshot, a plain close, a
close before the request was complete, a close before anything was read, a
graceful httpx close after an epoch frame — on the JSON and the HTML streams,
of a running run (frames flowing) and an idle one. The counts come from
GET /api/diagnostics: hub subscribers, asyncio tasks, threads, open file
descriptors and child processes must return to where they were.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from typing import Any

import pytest

from app.config import Settings
from app.main import create_app
from tests.reliability.support import abort, raw_request, read_until
from tests.support import TINY_RUN, LiveServer, wait_until

CYCLES = 1000
BATCH = 10  # streams open at once
# asyncio's default executor starts threads lazily, up to min(32, cpus + 4): a
# thread more after the cycles than before is the pool filling up, not a leak
# (a leak would grow with the 1,000 cycles).
THREAD_POOL_SLACK = 6


def _get(path: str, extra: str = "") -> bytes:
    head = f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: text/event-stream\r\n"
    return (head + extra + "\r\n").encode()


def _cycle(server: LiveServer, kind: int, busy: str, idle: str) -> list[socket.socket]:
    """Start one client of the given kind; returns the sockets to end later."""
    port = server.port
    if kind == 0:  # snapshot, then a reset
        sock = raw_request(port, _get(f"/api/runs/{busy}/events", "last-event-id: 999999999\r\n"))
        read_until(sock, b"\n\n")
        return [sock]
    if kind == 1:  # snapshot and a frame of the HTML stream, then a normal close
        sock = raw_request(port, _get(f"/ui/runs/{busy}/stream"))
        read_until(sock, b"event: snapshot")
        return [sock]
    if kind == 2:  # half a request line, then gone
        sock = raw_request(port, f"GET /api/runs/{busy}/ev".encode())
        return [sock]
    if kind == 3:  # a full request, closed before reading a byte
        return [raw_request(port, _get(f"/api/runs/{idle}/events?max_fps=60"))]
    # kind 4: a few epoch frames without weights, then a reset
    sock = raw_request(port, _get(f"/api/runs/{busy}/events?weights=false&max_fps=60"))
    read_until(sock, b"event: epoch")
    return [sock]


def _end(sockets: list[socket.socket], kind: int) -> None:
    for sock in sockets:
        if kind in (0, 4):
            abort(sock)
        else:
            sock.close()


def _counts(client: Any) -> dict[str, int]:
    body = client.get("/api/diagnostics").json()
    process = body["process"]
    return {
        "subscribers": body["subscribers"],
        "running": body["running"],
        "tasks": process["tasks"],
        "threads": process["threads"],
        "fds": process["fds"],
        "descendants": process["descendants"],
    }


def _settled(now: dict[str, int], baseline: dict[str, int]) -> bool:
    return (
        now["subscribers"] == 0
        and now["running"] == baseline["running"]
        and now["tasks"] <= baseline["tasks"]
        and now["fds"] <= baseline["fds"]
        and now["descendants"] == baseline["descendants"]
        and now["threads"] <= baseline["threads"] + THREAD_POOL_SLACK
    )


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_thousand_stream_cycles_leak_nothing(settings: Settings) -> None:
    settings = replace(settings, max_streams_per_client=1000)
    with LiveServer(create_app(settings)) as server, server.client() as client:
        busy = client.post(
            "/api/runs", json={**TINY_RUN, "epochs": 10_000_000, "max_epochs_per_second": 100}
        ).json()["id"]
        idle = client.post("/api/runs", json={**TINY_RUN, "start": False}).json()["id"]

        def run(cycles: int) -> None:
            for start in range(0, cycles, BATCH):
                kinds = [(start + i) % 5 for i in range(BATCH)]
                opened: list[tuple[list[socket.socket], int]] = []
                try:
                    for kind in kinds:
                        opened.append((_cycle(server, kind, busy, idle), kind))
                finally:
                    for sockets, kind in opened:
                        _end(sockets, kind)

        run(50)  # warm-up: caches, the thread pool and the frame renderer exist now
        wait_until(lambda: _counts(client)["subscribers"] == 0, timeout=30, what="warm-up end")
        baseline = _counts(client)
        run(CYCLES)
        seen: dict[str, int] = {}

        def settled() -> bool:
            seen.update(_counts(client))
            return _settled(seen, baseline)

        try:
            wait_until(settled, timeout=30, what="the counts to return to the baseline")
        except TimeoutError:
            pytest.fail(f"leak after {CYCLES} cycles: baseline {baseline}, now {seen}")
        # The run trained throughout, and the server still streams.
        assert client.get(f"/api/runs/{busy}").json()["status"] == "running"
        with client.stream("GET", f"/api/runs/{busy}/events") as response:
            assert next(response.iter_lines()) == "event: snapshot"
        client.post(f"/api/runs/{busy}/stop")

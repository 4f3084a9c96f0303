"""Shared test helpers: a real uvicorn server in a thread, and small HTTP waits.

Streaming tests need a real server: httpx's ASGITransport buffers a whole
response, so an endless SSE stream would hang. ``LiveServer`` binds a free
loopback port itself (no race on the port number), runs uvicorn with the
app's lifespan in a daemon thread, signals start-up through an event, and
sets ``timeout_graceful_shutdown`` so that open streams cannot block the exit.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx
import uvicorn
from fastapi import FastAPI

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class _Server(uvicorn.Server):
    """uvicorn.Server that reports start-up through a threading.Event."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class LiveServer:
    """``with LiveServer(app) as server: httpx.get(server.url + "/api/health")``."""

    def __init__(self, app: FastAPI, *, graceful_shutdown: float = 1.0) -> None:
        self.app = app
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=graceful_shutdown,
        )
        self._server = _Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self) -> LiveServer:
        self._thread.start()
        if not self._server.ready.wait(START_TIMEOUT):
            self._server.should_exit = True
            raise RuntimeError(f"uvicorn did not start within {START_TIMEOUT} s")
        if not self._server.started:
            raise RuntimeError("uvicorn failed to start (see the log above)")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT)
        self._socket.close()
        if self._thread.is_alive():
            raise RuntimeError(f"uvicorn did not stop within {STOP_TIMEOUT} s")

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.url, **kwargs)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(
    check: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.02, what: str = ""
) -> Any:
    """Poll ``check`` until it returns something truthy (for waits across processes only)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what or check}")
        time.sleep(interval)


def wait_for_status(
    client: httpx.Client | Any, run_id: str, statuses: set[str] | str, timeout: float = 60.0
) -> dict[str, Any]:
    """Poll GET /api/runs/{id} until its status is one of ``statuses``; returns the Run."""
    wanted = {statuses} if isinstance(statuses, str) else set(statuses)

    def check() -> dict[str, Any] | None:
        run = client.get(f"/api/runs/{run_id}").json()
        return run if run["status"] in wanted else None

    return wait_until(check, timeout=timeout, what=f"run {run_id} to become {sorted(wanted)}")


TINY_RUN: dict[str, Any] = {
    "dataset": {"kind": "xor", "n_samples": 40, "noise": 0.0},
    "hidden_layers": [4],
    "batch_size": None,
    "learning_rate": 0.5,
}


def strict_json(text: str | bytes) -> Any:
    """Parse JSON, failing on the non-standard tokens NaN/Infinity that API.md forbids."""

    def refuse(token: str) -> Any:
        raise AssertionError(f"non-strict JSON token {token!r} in response")

    return json.loads(text, parse_constant=refuse)


def wait_run(
    client: Any, run_id: str, statuses: set[str] | str, timeout: float = 60.0
) -> dict[str, Any]:
    """Await (not poll) a TestClient app's run reaching one of ``statuses``.

    Runs a coroutine on the TestClient's event loop that waits on the run's hub,
    which the manager bumps on every status change and frame.
    """
    wanted = {statuses} if isinstance(statuses, str) else set(statuses)
    manager = client.app.state.manager

    async def waiter() -> dict[str, Any]:
        hub = manager.hub(run_id)
        with anyio.fail_after(timeout):
            while str(hub.status) not in wanted:
                await hub.wait(hub.version, timeout)
        return manager.get(run_id).public()

    return client.portal.call(waiter)


def wait_epoch(client: Any, run_id: str, epoch: int, timeout: float = 60.0) -> None:
    """Await a TestClient app's run having the metrics of ``epoch``."""
    manager = client.app.state.manager

    async def waiter() -> None:
        hub = manager.hub(run_id)
        with anyio.fail_after(timeout):
            while hub.last_epoch < epoch:
                await hub.wait(hub.version, timeout)

    client.portal.call(waiter)


@contextmanager
def answering(
    process: subprocess.Popen[bytes], client: httpx.Client, *, timeout: float, term: bool
) -> Iterator[httpx.Client]:
    """`client` of a server process (in its own process group), once it answers
    /api/health; afterwards the process ends: asked with SIGTERM first when `term`
    (then killed after 30 s), else killed at once with its whole group."""
    try:

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}")
            try:
                return client.get("/api/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout=timeout, what="the server to answer /api/health")
        client.process = process  # type: ignore[attr-defined]
        yield client
    finally:
        client.close()
        if process.poll() is None:
            if term:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
            else:
                os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)

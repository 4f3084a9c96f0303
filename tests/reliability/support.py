"""Reliability-test helpers: `backprop-live serve` in a subprocess, raw sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from app.config import PROJECT_ROOT
from tests.support import wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServeProcess:
    """`python -m app.cli serve` on a loopback port, in its own process group."""

    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process = process
        self.url = url
        self.client = httpx.Client(base_url=url, timeout=30)


@contextmanager
def serve_process(
    db: Path | str, *args: str, env: dict[str, str] | None = None, output: Any = None
) -> Iterator[ServeProcess]:
    """The product's own entry point (its graceful-shutdown timeout, its checks)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--db", str(db), "--log-level", "warning", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "BACKPROP_LIVE_CHECKPOINT_INTERVAL": "0.3", **(env or {})},
        stdout=output,
        stderr=output,
        start_new_session=True,  # its own process group: a kill reaches its workers too
    )  # fmt: skip
    server = ServeProcess(process, f"http://127.0.0.1:{port}")
    try:

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}")
            try:
                return server.client.get("/api/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout=60, what="the server to answer /api/health")
        yield server
    finally:
        server.client.close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)


def raw_request(port: int, request: bytes) -> socket.socket:
    """A connected loopback socket that has sent ``request`` (bytes as given)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(request)
    return sock


def read_until(sock: socket.socket, marker: bytes, limit: int = 1 << 22) -> bytes:
    """Read from ``sock`` until ``marker`` appears (or the peer closes); everything read."""
    data = b""
    while marker not in data and len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def abort(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0): the abrupt disconnect of a crashed client."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()

"""Plain `uvicorn app.main:app` (no graceful timeout) exits on SIGTERM with dashboards open."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from tests.support import wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_sigterm_ends_open_ui_streams(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        "BACKPROP_LIVE_DB": str(tmp_path / "ui.db"),
        "BACKPROP_LIVE_SSE_PING_INTERVAL": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--fd", str(listener.fileno()),
         "--log-level", "warning"],
        cwd=PROJECT_ROOT, env=env, pass_fds=[listener.fileno()], start_new_session=True,
    )  # fmt: skip
    listener.close()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:

            def healthy() -> bool:
                try:
                    return client.get("/api/health").status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(healthy, timeout=60, what="the server to start")
            body = {"dataset": {"kind": "xor", "n_samples": 40}, "hidden_layers": [4]}
            idle = client.post("/api/runs", json={**body, "start": False}).json()
            busy = client.post("/api/runs", json={**body, "epochs": 10_000_000}).json()
            with (
                connect_sse(client, "GET", f"/ui/runs/{idle['id']}/stream") as a,
                connect_sse(client, "GET", f"/ui/runs/{busy['id']}/stream") as b,
            ):
                streams = [a.iter_sse(), b.iter_sse()]
                for stream in streams:
                    assert next(stream).event == "snapshot"
                process.send_signal(signal.SIGTERM)
                for stream in streams:
                    for _ in stream:  # each stream ends; the read timeout guards a hang
                        pass
        assert process.wait(60) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

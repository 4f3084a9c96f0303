"""Durability over restarts: a new app on the same database, and a server killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from httpx_sse import connect_sse

from app.config import PROJECT_ROOT, Settings
from app.main import create_app
from tests.support import TINY_RUN, answering, wait_for_status, wait_until


def snapshot(client: Any, run_id: str) -> dict[str, Any]:
    """Everything the API says about a run."""
    return {
        what: client.get(f"/api/runs/{run_id}{what}").json()
        for what in ("", "/metrics", "/weights", "/data")
    }


def test_new_app_on_the_same_database_serves_the_same_runs(settings: Settings) -> None:
    probe = {"inputs": [[0.3, -0.2], [0.9, 0.9]]}
    with TestClient(create_app(settings)) as client:
        done = client.post("/api/runs", json={**TINY_RUN, "epochs": 25, "start": False}).json()
        client.post(f"/api/runs/{done['id']}/step", json={"epochs": 25})
        paused = client.post("/api/runs", json={**TINY_RUN, "epochs": 50, "start": False}).json()
        client.post(f"/api/runs/{paused['id']}/step", json={"epochs": 7})
        before = {rid: snapshot(client, rid) for rid in (done["id"], paused["id"])}
        predicted = client.post(f"/api/runs/{done['id']}/predict", json=probe).json()
        listed = client.get("/api/runs").json()
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/runs").json() == listed
        for rid, seen in before.items():
            assert snapshot(client, rid) == seen
        assert before[done["id"]][""]["status"] == "completed"
        assert before[paused["id"]][""]["status"] == "stopped"
        assert client.post(f"/api/runs/{done['id']}/predict", json=probe).json() == predicted
        # the stopped run continues where it was
        resumed = client.post(f"/api/runs/{paused['id']}/step", json={"epochs": 3}).json()
        assert resumed["epoch"] == 10


@contextmanager
def server_process(
    db: Path | str, *, graceful: str | None = "2", extra_env: dict[str, str] | None = None
) -> Iterator[httpx.Client]:
    """`python -m uvicorn app.main:app` on an inherited listening socket (no port race)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        "BACKPROP_LIVE_DB": str(db),
        "BACKPROP_LIVE_CHECKPOINT_INTERVAL": "0.3",
        **(extra_env or {}),
    }
    graceful_args = ["--timeout-graceful-shutdown", graceful] if graceful else []
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--fd", str(listener.fileno()),
         "--log-level", "warning", *graceful_args],
        cwd=PROJECT_ROOT,
        env=env,
        pass_fds=[listener.fileno()],
        start_new_session=True,  # its own process group: the kill reaches its workers too
    )  # fmt: skip
    listener.close()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    with answering(process, client, timeout=60, term=False) as answered:
        yield answered


@pytest.mark.slow
def test_sigkill_mid_training_leaves_interrupted_and_intact_runs(database: str) -> None:
    db = database
    config = {**TINY_RUN, "start": False}
    with server_process(db) as client:
        done = client.post("/api/runs", json={**config, "epochs": 20}).json()
        client.post(f"/api/runs/{done['id']}/step", json={"epochs": 20})
        paused = client.post("/api/runs", json={**config, "epochs": 100}).json()
        client.post(f"/api/runs/{paused['id']}/step", json={"epochs": 5})
        training = client.post(
            "/api/runs", json={**config, "epochs": 10_000_000, "max_epochs_per_second": 500}
        ).json()
        client.post(f"/api/runs/{training['id']}/start")
        kept = {rid: snapshot(client, rid) for rid in (done["id"], paused["id"])}
        # Run past a few checkpoints (every 0.3 s), then kill everything at once.
        wait_until(
            lambda: client.get(f"/api/runs/{training['id']}").json()["epoch"] >= 400,
            timeout=60,
            what="400 epochs",
        )
        os.killpg(client.process.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        client.process.wait(30)  # type: ignore[attr-defined]

    with server_process(db) as client:
        for rid, seen in kept.items():
            assert snapshot(client, rid) == seen
        run = client.get(f"/api/runs/{training['id']}").json()
        assert run["status"] == "interrupted" and run["message"]
        epoch = run["epoch"]
        assert epoch > 0  # at least one checkpoint was taken
        metrics = client.get(f"/api/runs/{training['id']}/metrics").json()
        assert metrics["epoch"] == list(range(1, epoch + 1))
        # Continue from the checkpoint: the same numbers as an uninterrupted twin.
        resumed = client.post(f"/api/runs/{training['id']}/step", json={"epochs": 10}).json()
        assert resumed["status"] == "stopped" and resumed["epoch"] == epoch + 10
        twin = client.post("/api/runs", json={**config, "epochs": 10_000_000}).json()
        client.post(f"/api/runs/{twin['id']}/step", json={"epochs": epoch + 10})
        assert (
            client.get(f"/api/runs/{twin['id']}/metrics").json()
            == client.get(f"/api/runs/{training['id']}/metrics").json()
        )
        assert (
            client.get(f"/api/runs/{twin['id']}/weights").json()
            == client.get(f"/api/runs/{training['id']}/weights").json()
        )
        # and it can be started again
        client.post(f"/api/runs/{training['id']}/start")
        wait_for_status(client, training["id"], "running")
        client.post(f"/api/runs/{training['id']}/stop")


def test_sigterm_ends_open_streams_without_a_graceful_timeout(database: str) -> None:
    """Plain `uvicorn app.main:app` waits for every connection: the streams must end."""
    with server_process(
        database, graceful=None, extra_env={"BACKPROP_LIVE_SSE_PING_INTERVAL": "1"}
    ) as client:
        idle = client.post("/api/runs", json={**TINY_RUN, "start": False}).json()
        busy = client.post("/api/runs", json={**TINY_RUN, "epochs": 10_000_000}).json()
        with ExitStack() as stack:
            streams = []
            for run in (idle, busy, idle):
                source = stack.enter_context(
                    connect_sse(client, "GET", f"/api/runs/{run['id']}/events")
                )
                streams.append(source.iter_sse())
                assert next(streams[-1]).event == "snapshot"
            client.process.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
            for stream in streams:
                for _ in stream:  # each stream ends (the read timeout guards a hang)
                    pass
        assert client.process.wait(60) in (0, -signal.SIGTERM)  # type: ignore[attr-defined]
    with server_process(database) as client:
        assert client.get(f"/api/runs/{busy['id']}").json()["status"] in (
            "interrupted",
            "stopped",
        )

"""Two real `backprop-live serve` processes on one database and one Ray head (issue 13):
a run created on A is watched live on B (every epoch exactly once), predicted, PATCHed,
stopped and deleted through B; and when A is killed with SIGKILL while a run trains, the
run goes on training on Ray and B serves it with no gap in its history.

The database is one parameter (`db_url`): a fresh PostgreSQL database of the session's
throwaway cluster (tests/pg.py), as in a real deployment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app.config import PROJECT_ROOT
from tests.api.test_events import Received, events, read_until_status
from tests.cluster.conftest import free_port
from tests.support import answering, wait_until

ray = pytest.importorskip("ray") if os.environ.get("CI") != "true" else __import__("ray")

RUN = {
    "dataset": {"kind": "spiral", "n_samples": 200},
    "hidden_layers": [8, 8],
    "max_epochs_per_second": 40,
}


@pytest.fixture
def db_url(postgres_url: str) -> str:
    """The shared database of both servers: one PostgreSQL database."""
    return postgres_url


@contextmanager
def serve(db_url: str, ray_address: str, **settings: str) -> Iterator[httpx.Client]:
    """`backprop-live serve` with the Ray executor, in its own process group; `settings`
    are more BACKPROP_LIVE_* variables (by their lower-case names)."""
    port = free_port()
    env = {
        **os.environ,
        "BACKPROP_LIVE_DB": db_url,
        "BACKPROP_LIVE_PORT": str(port),
        "BACKPROP_LIVE_EXECUTOR": "ray",
        "BACKPROP_LIVE_RAY_ADDRESS": ray_address,
        "BACKPROP_LIVE_CHECKPOINT_INTERVAL": "0.3",
        "BACKPROP_LIVE_SSE_PING_INTERVAL": "1",
        **{f"BACKPROP_LIVE_{name.upper()}": value for name, value in settings.items()},
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "backprop-live"), "serve"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    with answering(process, client, timeout=90, term=True) as answered:
        yield answered


@pytest.fixture(autouse=True)
def _no_actor_outlives_its_test(ray_head: str) -> Iterator[None]:
    yield
    for name in ray.util.list_named_actors():
        try:
            ray.kill(ray.get_actor(name, namespace="backprop-live"), no_restart=True)
        except ValueError:
            continue


def watch(client: httpx.Client, run_id: str, until: set[str]) -> Received:
    received = Received()
    with events(client, run_id) as source:
        for _ in read_until_status(source, received, until):
            pass
    return received


def epochs_of(client: httpx.Client, run_id: str) -> list[int]:
    response = client.get(f"/api/runs/{run_id}/metrics")
    assert response.status_code == 200, response.text
    epochs: list[int] = response.json()["epoch"]
    return epochs


@pytest.mark.slow
def test_a_run_made_on_a_is_watched_predicted_patched_stopped_and_deleted_through_b(
    ray_head: str, db_url: str
) -> None:
    one_slot = {"max_running_runs": "1"}  # cluster-wide: one run trains, on either server
    with serve(db_url, ray_head, **one_slot) as a, serve(db_url, ray_head, **one_slot) as b:
        run = a.post("/api/runs", json={**RUN, "epochs": 100_000}).json()
        run_id = run["id"]
        assert b.get(f"/api/runs/{run_id}").json()["status"] == "running"
        refused = b.post("/api/runs", json={**RUN, "epochs": 10})
        assert refused.status_code == 409, refused.text
        assert "too many runs are training (1, the limit is 1)" in refused.json()["detail"]
        received = Received()
        with events(b, run_id) as source:
            for sse in source.iter_sse():
                received.add(sse)
                if len(received.epochs) >= 30:
                    break
        assert received.epochs == list(range(1, len(received.epochs) + 1))

        predicted = b.post(f"/api/runs/{run_id}/predict", json={"inputs": [[0.1, 0.2]]})
        assert predicted.status_code == 200, predicted.text
        assert len(predicted.json()["outputs"]) == 1

        patched = b.patch(f"/api/runs/{run_id}", json={"learning_rate": 0.05, "epochs": 90_000})
        assert patched.status_code == 200, patched.text
        assert patched.json()["config"]["learning_rate"] == 0.05
        assert a.get(f"/api/runs/{run_id}").json()["config"]["epochs"] == 90_000
        wait_until(  # the actor trains with the new rate (B sees it in the run's metrics)
            lambda: 0.05 in b.get(f"/api/runs/{run_id}/metrics").json()["learning_rate"],
            timeout=30,
            what="an epoch at the PATCHed learning rate",
        )

        stopped = b.post(f"/api/runs/{run_id}/stop")
        assert stopped.status_code == 200, stopped.text
        view = stopped.json()
        assert view["status"] == "stopped"
        on_a = a.get(f"/api/runs/{run_id}").json()
        assert on_a["status"] == "stopped" and on_a["epoch"] == view["epoch"]
        assert on_a["config"]["learning_rate"] == 0.05  # the holder kept B's PATCH
        assert epochs_of(b, run_id) == list(range(1, view["epoch"] + 1))
        rates = a.get(f"/api/runs/{run_id}/metrics").json()["learning_rate"]
        assert rates[-1] == 0.05  # stored by the holder as the actor trained it

        renamed = a.patch(f"/api/runs/{run_id}", json={"name": "renamed on A"})
        assert renamed.status_code == 200, renamed.text
        listed = {r["id"]: r for r in b.get("/api/runs").json()["runs"]}
        assert listed[run_id]["name"] == "renamed on A" and listed[run_id]["status"] == "stopped"

        # Started again through B (B holds it now), then reset through A.
        assert b.post(f"/api/runs/{run_id}/start").json()["status"] == "running"
        wait_until(
            lambda: b.get(f"/api/runs/{run_id}").json()["epoch"] > view["epoch"] + 5,
            timeout=30,
            what="epochs after the restart",
        )
        reset = a.post(f"/api/runs/{run_id}/reset")
        assert reset.status_code == 200, reset.text
        assert reset.json()["status"] == "created" and reset.json()["epoch"] == 0
        on_b = b.get(f"/api/runs/{run_id}").json()
        assert on_b["status"] == "created" and on_b["epoch"] == 0
        assert epochs_of(b, run_id) == [] and epochs_of(a, run_id) == []

        other = b.post("/api/runs", json={**RUN, "epochs": 10})  # the slot is free again
        assert other.status_code == 201, other.text

        assert b.delete(f"/api/runs/{run_id}").status_code == 204
        assert a.get(f"/api/runs/{run_id}").status_code == 404
        assert b.get(f"/api/runs/{run_id}").status_code == 404


@pytest.mark.slow
def test_a_killed_server_s_run_goes_on_on_ray_and_the_other_serves_it_without_a_gap(
    ray_head: str, db_url: str
) -> None:
    epochs = 400
    with serve(db_url, ray_head) as a, serve(db_url, ray_head) as b:
        run_id = a.post("/api/runs", json={**RUN, "epochs": epochs}).json()["id"]
        received = Received()
        with events(b, run_id) as source:
            stream = read_until_status(source, received, {"completed", "failed"})
            for _ in stream:
                if len(received.epochs) >= 60:
                    break
            os.killpg(a.process.pid, signal.SIGKILL)  # type: ignore[attr-defined]
            a.process.wait(30)  # type: ignore[attr-defined]
            for _ in stream:
                pass
        assert received.epochs == list(range(1, epochs + 1))  # each once, in order
        view = b.get(f"/api/runs/{run_id}").json()
        assert view["status"] == "completed" and view["epoch"] == epochs
        assert epochs_of(b, run_id) == list(range(1, epochs + 1))  # stored without a gap
        assert b.get(f"/api/runs/{run_id}/weights").json()["epoch"] == epochs


@pytest.mark.slow
def test_a_stop_through_b_right_after_a_was_killed_adopts_and_stops_the_run(
    ray_head: str, db_url: str
) -> None:
    with serve(db_url, ray_head) as a, serve(db_url, ray_head) as b:
        run_id = a.post("/api/runs", json={**RUN, "epochs": 100_000}).json()["id"]
        wait_until(
            lambda: a.get(f"/api/runs/{run_id}").json()["epoch"] >= 20,
            timeout=60,
            what="20 epochs",
        )
        os.killpg(a.process.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        a.process.wait(30)  # type: ignore[attr-defined]
        stopped = b.post(f"/api/runs/{run_id}/stop")
        assert stopped.status_code == 200, stopped.text
        view = stopped.json()
        assert view["status"] == "stopped" and view["epoch"] >= 20
        assert epochs_of(b, run_id) == list(range(1, view["epoch"] + 1))
        # B holds it now: it starts again from where it stopped, on Ray.
        again = b.post(f"/api/runs/{run_id}/start")
        assert again.status_code == 200 and again.json()["status"] == "running"
        assert b.post(f"/api/runs/{run_id}/stop").json()["status"] == "stopped"
        assert epochs_of(b, run_id) == list(
            range(1, b.get(f"/api/runs/{run_id}").json()["epoch"] + 1)
        )

"""Faults: SIGTERM with open streams and running runs, a worker killed from outside, a full disk.

(SIGKILL of the server mid-training is tests/api/test_restart.py; a killed worker at the
manager level is tests/runs/test_manager.py. These add the HTTP-level and process-level views.)
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.storage.store import SqliteStore, Store
from tests.pg import on_postgres
from tests.reliability.support import serve_process
from tests.support import TINY_RUN, LiveServer, wait_for_status, wait_until

ENDLESS = {**TINY_RUN, "epochs": 10_000_000, "max_epochs_per_second": 300}


def _process_group(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


@pytest.mark.slow
def test_sigterm_with_streams_and_running_runs_exits_within_5_s_with_checkpoints(
    database: str,
) -> None:
    db = database
    with serve_process(db, env={"BACKPROP_LIVE_SSE_PING_INTERVAL": "1"}) as server:
        client = server.client
        runs = [client.post("/api/runs", json=ENDLESS).json() for _ in range(2)]
        idle = client.post("/api/runs", json={**TINY_RUN, "start": False}).json()
        for run in runs:
            wait_until(
                lambda run=run: client.get(f"/api/runs/{run['id']}").json()["epoch"] >= 200,
                timeout=60,
                what="200 epochs",
            )
        with ExitStack() as stack:
            streams = []
            paths = [f"/api/runs/{r['id']}/events" for r in (*runs, idle)]
            paths += [f"/ui/runs/{r['id']}/stream" for r in (*runs, idle)]
            for path in paths:
                response = stack.enter_context(client.stream("GET", path))
                assert response.status_code == 200
                lines = response.iter_lines()
                next(lines)
                streams.append(lines)
            assert client.get("/api/diagnostics").json()["subscribers"] == len(paths)
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            code = server.process.wait(30)
            elapsed = time.monotonic() - started
            for lines in streams:
                for _ in lines:  # every stream has ended (the read timeout guards a hang)
                    pass
        assert code in (0, -signal.SIGTERM)
        assert elapsed <= 5.0, f"the server took {elapsed:.1f} s to exit"
        # No worker, forkserver or other child outlived the server.
        wait_until(
            lambda: not _process_group(server.process.pid), timeout=10, what="children to exit"
        )

    with serve_process(db) as server:
        client = server.client
        for run in runs:
            after = client.get(f"/api/runs/{run['id']}").json()
            assert after["status"] == "interrupted" and after["message"]
            epoch = after["epoch"]
            assert epoch > 0  # checkpointed
            metrics = client.get(f"/api/runs/{run['id']}/metrics").json()
            assert metrics["epoch"] == list(range(1, epoch + 1))  # no gap, no duplicate
            resumed = client.post(f"/api/runs/{run['id']}/step", json={"epochs": 3}).json()
            assert resumed["status"] == "stopped" and resumed["epoch"] == epoch + 3
        assert client.get(f"/api/runs/{idle['id']}").json()["status"] == "created"


def test_a_worker_killed_from_outside_fails_its_run_only(live_server: LiveServer) -> None:
    with live_server.client() as client:
        victim, survivor = (client.post("/api/runs", json=ENDLESS).json() for _ in range(2))
        workers = wait_until(
            lambda: (
                (w := client.get("/api/diagnostics").json()["workers"]).keys()
                >= {victim["id"], survivor["id"]}
                and w
            ),
            timeout=30,
            what="both workers",
        )
        with client.stream("GET", f"/api/runs/{victim['id']}/events") as response:
            lines = response.iter_lines()
            os.kill(workers[victim["id"]], signal.SIGKILL)
            # The stream reports the failure as a status event.
            assert "event: status" in lines
            status_data = next(line for line in lines if line.startswith("data:"))
            assert '"failed"' in status_data and "SIGKILL" in status_data
        failed = wait_for_status(client, victim["id"], "failed", timeout=30)
        assert "SIGKILL" in failed["message"]
        # The server and the other run carry on.
        assert client.get("/api/health").status_code == 200
        epoch = client.get(f"/api/runs/{survivor['id']}").json()["epoch"]
        wait_until(
            lambda: client.get(f"/api/runs/{survivor['id']}").json()["epoch"] > epoch + 20,
            timeout=30,
            what="the survivor to keep training",
        )
        diagnostics = client.get("/api/diagnostics").json()
        assert diagnostics["running"] == 1 and victim["id"] not in diagnostics["workers"]
        # A failed run is not started again (it must be reset), and stays readable.
        assert client.post(f"/api/runs/{victim['id']}/start").status_code == 409
        assert client.get(f"/api/runs/{victim['id']}/metrics").status_code == 200
        assert client.post(f"/api/runs/{victim['id']}/reset").json()["status"] == "created"
        client.post(f"/api/runs/{survivor['id']}/stop")


# ---- a full disk ---------------------------------------------------------------------------


# A full disk is SQLite's own failure here (PRAGMA max_page_count); PostgreSQL's
# (a server that is down or gone) are in tests/reliability/test_postgres_outage.py.
sqlite_only = pytest.mark.skipif(on_postgres(), reason="a full SQLite file")


@contextmanager
def disk_full(store: Store) -> Iterator[None]:
    """Every connection of ``store`` sees a database that cannot grow (SQLITE_FULL).

    ``PRAGMA max_page_count`` caps the file at its current size, as a full disk
    would; chmod cannot be used (the tests may run as root, which ignores it).
    """
    limited: list[sqlite3.Connection] = []
    original = store._connection

    def capped() -> sqlite3.Connection:
        db = original()
        if db not in limited:
            (pages,) = db.execute("PRAGMA page_count").fetchone()
            db.execute(f"PRAGMA max_page_count = {pages}")
            limited.append(db)
        return db

    store._connection = capped  # type: ignore[method-assign]
    try:
        yield
    finally:
        del store._connection
        for db in limited:
            db.execute("PRAGMA max_page_count = 1073741823")


def _state(client: Any, run_id: str) -> dict[str, Any]:
    return {
        what: client.get(f"/api/runs/{run_id}{what}").json()
        for what in ("", "/metrics", "/weights")
    }


@sqlite_only
def test_full_disk_is_503_with_a_detail_and_leaves_a_consistent_database(
    settings: Settings,
) -> None:
    custom = {
        "kind": "custom",
        "task": "regression",
        "x": [[i / 3000, 1 - i / 3000] for i in range(3000)],
        "y": [i / 3000 for i in range(3000)],
    }
    with TestClient(create_app(settings)) as client:
        kept = client.post("/api/runs", json={**TINY_RUN, "epochs": 100, "start": False}).json()
        client.post(f"/api/runs/{kept['id']}/step", json={"epochs": 5})
        before = _state(client, kept["id"])
        listed = client.get("/api/runs").json()
        with disk_full(client.app.state.store):
            refused = client.post("/api/runs", json={"dataset": custom, "start": False})
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"]
            detail = refused.json()["detail"]
            assert "storage unavailable" in detail and "disk is full" in detail
            # Nothing half-made: no run in memory, none in the database.
            assert client.get("/api/runs").json() == listed
            # Training that cannot be stored does not pretend to be stored.
            stepped = client.post(f"/api/runs/{kept['id']}/step", json={"epochs": 50})
            assert stepped.status_code in (200, 503), stepped.text
            if stepped.status_code == 200:
                assert stepped.json()["status"] == "failed"
                assert "store" in stepped.json()["message"]
            assert client.get("/api/health").status_code == 200
    # Space is back: a new server on the same file.
    with sqlite3.connect(settings.db) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with TestClient(create_app(settings)) as client:
        assert [r["id"] for r in client.get("/api/runs").json()["runs"]] == [kept["id"]]
        after = _state(client, kept["id"])
        assert after["/metrics"] == before["/metrics"]  # the durable history, unchanged
        assert after["/weights"] == before["/weights"]
        assert after[""]["epoch"] == 5 and after[""]["status"] in ("stopped", "interrupted")
        # It continues exactly like a twin that never saw the full disk.
        client.post(f"/api/runs/{kept['id']}/step", json={"epochs": 10})
        twin = client.post("/api/runs", json={**TINY_RUN, "epochs": 100, "start": False}).json()
        client.post(f"/api/runs/{twin['id']}/step", json={"epochs": 15})
        assert _state(client, twin["id"])["/metrics"] == _state(client, kept["id"])["/metrics"]


@sqlite_only
@pytest.mark.slow
@pytest.mark.parametrize(
    "stored_epochs",
    [pytest.param(0, id="before-first-checkpoint"), pytest.param(100, id="later")],
)
def test_disk_filling_up_mid_training_keeps_the_last_durable_state(
    settings: Settings, stored_epochs: int
) -> None:
    with TestClient(create_app(settings)) as client:
        run = client.post("/api/runs", json=ENDLESS).json()
        store = client.app.state.store
        wait_until(
            lambda: client.get(f"/api/runs/{run['id']}").json()["epoch"] >= 100,
            timeout=60,
            what="100 epochs",
        )
        if stored_epochs:
            wait_until(
                lambda: (
                    (c := store.load_checkpoint(run["id"])) is not None and c.epoch >= stored_epochs
                ),
                timeout=60,
                what=f"a stored checkpoint past epoch {stored_epochs}",
            )
        with disk_full(store):
            epoch = client.get(f"/api/runs/{run['id']}").json()["epoch"]
            wait_until(  # it keeps going in memory while its checkpoints fail
                lambda: client.get(f"/api/runs/{run['id']}").json()["epoch"] > epoch + 200,
                timeout=60,
                what="training past the full disk",
            )
            stopped = client.post(f"/api/runs/{run['id']}/stop")
            assert stopped.status_code in (200, 503), stopped.text
            assert client.get("/api/health").status_code == 200
    with sqlite3.connect(settings.db) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with TestClient(create_app(settings)) as client:
        after = client.get(f"/api/runs/{run['id']}").json()
        metrics = client.get(f"/api/runs/{run['id']}/metrics").json()
        # Whatever was durable before the disk filled, exactly: contiguous history,
        # an epoch that matches its checkpoint, and it resumes from there.
        assert after["epoch"] >= stored_epochs
        assert metrics["epoch"] == list(range(1, after["epoch"] + 1))
        resumed = client.post(f"/api/runs/{run['id']}/step", json={"epochs": 2}).json()
        assert resumed["epoch"] == after["epoch"] + 2


@sqlite_only
def test_full_disk_detail_says_the_disk_is_full(client: TestClient) -> None:
    custom = {"kind": "custom", "task": "regression", "x": [[0.5]] * 5000, "y": [0.5] * 5000}
    with disk_full(client.app.state.store):
        refused = client.post("/api/runs", json={"dataset": custom, "start": False})
    assert refused.status_code == 503
    assert "disk is full" in refused.json()["detail"]


@contextmanager
def read_only(store: Store) -> Iterator[None]:
    """Every connection of ``store`` refuses writes, as a read-only file would
    (``PRAGMA query_only``: chmod does not stop root, who may run the tests), or as a
    PostgreSQL server in read-only mode would (``default_transaction_read_only``)."""
    if not isinstance(store, SqliteStore):
        with _read_only_postgres(store):
            yield
        return
    limited: list[sqlite3.Connection] = []
    original = store._connection

    def guarded() -> sqlite3.Connection:
        db = original()
        if db not in limited:
            db.execute("PRAGMA query_only = ON")
            limited.append(db)
        return db

    store._connection = guarded  # type: ignore[method-assign]
    try:
        yield
    finally:
        del store._connection
        for db in limited:
            db.execute("PRAGMA query_only = OFF")


@contextmanager
def _read_only_postgres(store: Any) -> Iterator[None]:
    original = store._connection

    @contextmanager
    def guarded() -> Iterator[Any]:
        with original() as conn:
            conn.execute("SET default_transaction_read_only = on")
            try:
                yield conn
            finally:
                conn.execute("SET default_transaction_read_only = off")

    store._connection = guarded
    try:
        yield
    finally:
        del store._connection


def test_read_only_database_is_503_and_reads_still_work(client: TestClient) -> None:
    kept = client.post("/api/runs", json={**TINY_RUN, "epochs": 10, "start": False}).json()
    client.post(f"/api/runs/{kept['id']}/step", json={"epochs": 3})
    before = _state(client, kept["id"])
    listed = client.get("/api/runs").json()
    with read_only(client.app.state.store):
        refused = client.post("/api/runs", json={**TINY_RUN, "start": False})
        assert refused.status_code == 503, refused.text
        assert "storage unavailable" in refused.json()["detail"]
        assert "readonly" in refused.json()["detail"].replace("-", "").replace(" ", "")
        assert client.get("/api/runs").json() == listed  # nothing half-made
        assert _state(client, kept["id"]) == before  # reads still answer
    # Writable again: the same server carries on from the stored state.
    assert client.get(f"/api/runs/{kept['id']}/metrics").json() == before["/metrics"]
    assert client.post(f"/api/runs/{kept['id']}/step", json={"epochs": 2}).json()["epoch"] == 5


def test_a_patch_refused_by_the_store_changes_nothing(client: TestClient) -> None:
    kept = client.post("/api/runs", json={**TINY_RUN, "start": False}).json()
    with read_only(client.app.state.store):
        assert client.patch(f"/api/runs/{kept['id']}", json={"name": "new"}).status_code == 503
    assert client.get(f"/api/runs/{kept['id']}").json()["name"] == kept["name"]


def test_a_step_refused_by_the_store_does_not_train(client: TestClient) -> None:
    kept = client.post("/api/runs", json={**TINY_RUN, "epochs": 10, "start": False}).json()
    client.post(f"/api/runs/{kept['id']}/step", json={"epochs": 3})
    with read_only(client.app.state.store):
        assert client.post(f"/api/runs/{kept['id']}/step", json={"epochs": 2}).status_code == 503
        after = client.get(f"/api/runs/{kept['id']}").json()
    assert (after["status"], after["epoch"]) == ("stopped", 3)

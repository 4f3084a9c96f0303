"""One database, several processes (issue 12): a server and `backprop-live train` each
train their own runs under a lease, and neither touches the other's.

Both sides are real: a uvicorn server in this process and the CLI as a child process
on the same database (a SQLite file, or PostgreSQL with BACKPROP_LIVE_TEST_DB=postgresql).
Waits across processes poll the database or the API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from app.config import Settings
from app.main import create_app
from tests.pg import query
from tests.support import TINY_RUN, LiveServer, wait_for_status, wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def cli(db: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "train", "--db", str(db), "--quiet", *args],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stored_status(db: str, run_id: str) -> str:
    return str(query(db, "SELECT status FROM runs WHERE id = ?", (run_id,))[0][0])


def running_in_db(db: str) -> list[str]:
    """The ids of runs stored as running past their first checkpoint ([] before the CLI
    made its tables): the CLI is then past its start-up and handles Ctrl-C."""
    rows = query(db, "SELECT id FROM runs WHERE status = 'running' AND epoch > 0")
    return [str(r[0]) for r in rows]


def test_the_cli_leaves_the_servers_running_runs_alone(database: str) -> None:
    db = database
    with LiveServer(create_app(Settings.from_env({}, db=db))) as server, server.client() as api:
        run = api.post("/api/runs", json={**TINY_RUN, "epochs": 10_000_000}).json()
        wait_until(lambda: api.get(f"/api/runs/{run['id']}").json()["epoch"] > 2)
        done = cli(db, "--dataset", "sine", "--epochs", "20", "--name", "from the cli")
        _, err = done.communicate(timeout=120)
        assert done.returncode == 0, err
        # The CLI's start-up did not mark the server's run interrupted, in the database
        # nor in the server, and it keeps training.
        assert stored_status(db, run["id"]) == "running"
        before = api.get(f"/api/runs/{run['id']}").json()
        assert before["status"] == "running"
        wait_until(lambda: api.get(f"/api/runs/{run['id']}").json()["epoch"] > before["epoch"])
        names = {r["name"]: r for r in api.get("/api/runs").json()["runs"]}
        assert names["from the cli"]["status"] == "completed"
        api.post(f"/api/runs/{run['id']}/stop")


def test_a_server_leaves_a_run_the_cli_trains_alone(database: str) -> None:
    db = database
    training = cli(db, "--dataset", "xor", "--hidden", "4", "--epochs", "10000000")
    try:
        (cli_run,) = wait_until(lambda: running_in_db(db), timeout=60, what="the CLI's run")
        with (
            LiveServer(create_app(Settings.from_env({}, db=db))) as server,
            server.client() as api,
        ):
            # Not the server's to show as interrupted, nor to start.
            assert stored_status(db, cli_run) == "running"
            assert cli_run not in {r["id"] for r in api.get("/api/runs").json()["runs"]}
            training.send_signal(signal.SIGINT)  # Ctrl-C: the CLI stores it as stopped
            training.communicate(timeout=60)
            assert training.returncode == 130
            run = wait_for_status(api, cli_run, "stopped")
            # Now it is the server's: it trains it on.
            stepped = api.post(f"/api/runs/{cli_run}/step", json={"epochs": 2})
            assert stepped.status_code == 200 and stepped.json()["epoch"] == run["epoch"] + 2
    finally:
        if training.poll() is None:
            training.kill()
            training.wait(30)


def test_a_killed_cli_run_is_recovered_by_the_server(database: str) -> None:
    db = database
    training = cli(db, "--dataset", "xor", "--hidden", "4", "--epochs", "10000000")
    (cli_run,) = wait_until(lambda: running_in_db(db), timeout=60, what="the CLI's run")
    os.kill(training.pid, signal.SIGKILL)
    training.communicate(timeout=30)
    with LiveServer(create_app(Settings.from_env({}, db=db))) as server, server.client() as api:
        # Its owner is gone (a dead process of this machine): the lease does not hold.
        assert api.get(f"/api/runs/{cli_run}").json()["status"] == "interrupted"

"""The `backprop-live` command: headless training into the database, options, serve."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.cli import build_parser, main
from app.config import PROJECT_ROOT, Settings
from app.main import create_app
from tests.support import wait_until


def test_train_stores_a_completed_run_the_server_shows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "cli.db"
    code = main(
        ["train", "--db", str(db), "--dataset", "xor", "--n-samples", "60", "--hidden", "4",
         "--epochs", "40", "--batch-size", "full", "--lr", "0.5", "--seed", "3", "--quiet",
         "--name", "from the cli"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "completed at epoch 40" in out and "train_loss" in out
    with TestClient(create_app(Settings.from_env({}, db=db))) as client:
        runs = client.get("/api/runs").json()["runs"]
        assert len(runs) == 1
        run = runs[0]
        assert run["name"] == "from the cli" and run["status"] == "completed"
        assert run["epoch"] == 40 and run["layer_sizes"] == [2, 4, 1]
        assert run["config"]["seed"] == 3 and run["config"]["batch_size"] is None
        metrics = client.get(f"/api/runs/{run['id']}/metrics").json()
        assert metrics["epoch"] == list(range(1, 41))
        assert client.get(f"/api/runs/{run['id']}/weights").json()["epoch"] == 40
        predicted = client.post(f"/api/runs/{run['id']}/predict", json={"inputs": [[0.5, 0.5]]})
        assert predicted.status_code == 200 and len(predicted.json()["labels"]) == 1
        # the same config trained by the server gives the same numbers
        body = {**run["config"], "start": False}
        twin = client.post("/api/runs", json=body).json()
        client.post(f"/api/runs/{twin['id']}/step", json={"epochs": 40})
        assert client.get(f"/api/runs/{twin['id']}/metrics").json() == metrics


def test_a_run_trained_while_the_server_runs_appears_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "shared.db"
    with TestClient(create_app(Settings.from_env({}, db=db))) as client:
        assert client.get("/api/runs").json() == {"runs": []}
        code = main(
            ["train", "--db", str(db), "--dataset", "sine", "--epochs", "5", "--quiet",
             "--name", "trained beside the server"]
        )  # fmt: skip
        assert code == 0
        runs = client.get("/api/runs").json()["runs"]
        assert [r["name"] for r in runs] == ["trained beside the server"]
        run_id = runs[0]["id"]
        assert client.get(f"/api/runs/{run_id}").json()["status"] == "completed"
        assert client.get(f"/api/runs/{run_id}/metrics").json()["epoch"] == [1, 2, 3, 4, 5]
        assert client.delete(f"/api/runs/{run_id}").status_code == 204
        assert client.get("/api/runs").json() == {"runs": []}
    capsys.readouterr()


def test_train_shows_a_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--db", str(tmp_path / "p.db"), "--dataset", "sine", "--epochs", "5",
                 "--hidden", "none"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0
    assert "epoch" in captured.err and "5/5" in captured.err  # tqdm writes to stderr
    assert "train_accuracy" not in captured.out  # regression: no accuracy line


def test_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as top:
        main(["--help"])
    assert top.value.code == 0
    text = capsys.readouterr().out
    assert "serve" in text and "train" in text
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name, sub in subparsers.choices.items():  # type: ignore[union-attr]
        with pytest.raises(SystemExit):
            main([name, "--help"])
        text = capsys.readouterr().out
        for action in sub._actions:
            for option in action.option_strings:
                assert option in text, (name, option)
            if action.option_strings and action.dest != "help":
                assert action.help, (name, action.dest)


@pytest.mark.parametrize(
    ("argv", "mentions"),
    [
        (["train", "--epochs", "0"], "--epochs"),
        (["train", "--lr", "0"], "--lr"),
        (["train", "--dataset", "nope"], "--dataset"),
        (["train", "--hidden", "8,x"], "--hidden"),
        (["train", "--batch-size", "some"], "--batch-size"),
        (["train", "--dataset", "xor", "--n-classes", "3"], "n-classes"),
        (["train", "--dataset", "sine", "--loss", "cross_entropy"], "loss"),
        (["train", "--frobnicate"], "--frobnicate"),
        (["serve", "--port", "eighty"], "--port"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], mentions: str
) -> None:
    if argv[0] == "train":
        argv = [*argv, "--db", str(tmp_path / "bad.db"), "--quiet"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert mentions in capsys.readouterr().err


def test_serve_is_the_default_and_stops_on_sigterm(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--port", str(port), "--db", str(tmp_path / "s.db"),
         "--log-level", "warning"],
        cwd=PROJECT_ROOT,
        env={**os.environ},
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            def healthy() -> bool:
                if process.poll() is not None:
                    raise RuntimeError(f"serve exited with {process.returncode}")
                try:
                    return client.get("/api/health").json() == {"status": "ok"}
                except httpx.TransportError:
                    return False

            wait_until(healthy, timeout=60, what="serve to answer")
            assert client.get("/api/runs").json() == {"runs": []}
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down cleanly, then re-raises the signal (the shell convention).
        assert process.wait(30) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    assert (tmp_path / "s.db").exists()


def test_ctrl_c_stops_and_keeps_the_run(tmp_path: Path) -> None:
    db = tmp_path / "interrupted.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "train", "--db", str(db), "--dataset", "xor",
         "--hidden", "4", "--epochs", "10000000"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None and process.stdout is not None
    progress = re.compile(rb"\b[1-9]\d*/10000000\b")
    seen = b""

    def read_progress() -> None:
        nonlocal seen
        while not progress.search(seen[-200:]):
            chunk = os.read(process.stderr.fileno(), 4096)  # type: ignore[union-attr]
            if not chunk:
                return
            seen += chunk

    reader = threading.Thread(target=read_progress, daemon=True)
    reader.start()
    reader.join(60)
    try:
        assert progress.search(seen), seen[-500:]
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    assert process.returncode == 130
    assert b": stopped at epoch" in out
    with TestClient(create_app(Settings.from_env({}, db=db))) as client:
        run = client.get("/api/runs").json()["runs"][0]
        assert run["status"] == "stopped" and run["epoch"] > 0
        metrics = client.get(f"/api/runs/{run['id']}/metrics").json()
        assert metrics["epoch"] == list(range(1, run["epoch"] + 1))


def test_train_takes_features_and_the_articles_shortcut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "features.db"
    code = main(
        ["train", "--db", str(db), "--dataset", "circle", "--n-samples", "60", "--hidden", "3",
         "--features", "x1_sq,x2_sq", "--loss", "mse", "--weights-only", "--epochs", "3",
         "--quiet"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr()
    with TestClient(create_app(Settings.from_env({}, db=db))) as client:
        (run,) = client.get("/api/runs").json()["runs"]
        assert run["config"]["features"] == ["x1_sq", "x2_sq"]
        assert run["config"]["error_propagation"] == "weights_only"
        assert run["layer_sizes"] == [2, 3, 1] and run["epoch"] == 3
    with pytest.raises(SystemExit) as refused:
        main(["train", "--db", str(db), "--features", "x1,nope", "--quiet"])
    assert refused.value.code == 2 and "--features" in capsys.readouterr().err


def test_train_on_postgresql_in_its_own_process(postgres_url: str) -> None:
    """`backprop-live train` as a real process on a PostgreSQL store; a server on the
    same database serves the run. The URL's password is never printed."""
    url = postgres_url.replace("postgres@", "postgres:s3cret@")  # trust: the password is unused
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "train", "--db", url, "--dataset", "xor",
         "--n-samples", "60", "--hidden", "4", "--epochs", "30", "--batch-size", "full",
         "--seed", "5", "--quiet", "--name", "on postgres"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "completed at epoch 30" in done.stdout
    assert "s3cret" not in done.stdout + done.stderr and "postgres:***@" in done.stdout
    with TestClient(create_app(Settings.from_env({}, db=postgres_url))) as client:
        (run,) = client.get("/api/runs").json()["runs"]
        assert (run["name"], run["status"], run["epoch"]) == ("on postgres", "completed", 30)
        metrics = client.get(f"/api/runs/{run['id']}/metrics").json()
        assert metrics["epoch"] == list(range(1, 31))
        assert client.get(f"/api/runs/{run['id']}/weights").json()["epoch"] == 30
        # The same config trained by the server gives the same numbers, to the bit.
        twin = client.post("/api/runs", json={**run["config"], "start": False}).json()
        client.post(f"/api/runs/{twin['id']}/step", json={"epochs": 30})
        assert client.get(f"/api/runs/{twin['id']}/metrics").json() == metrics


def test_train_refuses_a_database_it_cannot_use(postgres_cluster: object) -> None:
    for db, words in (
        ("mysql://me@localhost/runs", "mysql:// is not a database this server uses"),
        ("postgresql://me:pw@127.0.0.1:1/runs", "database: cannot connect to PostgreSQL at"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", "train", "--db", db, "--dataset", "xor",
             "--epochs", "2", "--quiet"],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert words in done.stderr and "Traceback" not in done.stderr
        assert ":pw@" not in done.stderr


def test_serve_refuses_a_database_it_cannot_reach_in_one_line(postgres_cluster: object) -> None:
    with socket.socket() as s:  # a free port: the server must not get as far as binding it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port),
         "--db", "postgresql://bp:pw@127.0.0.1:1/runs"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith(
        "backprop-live serve: error: database: cannot connect to PostgreSQL at "
        "postgresql://bp:***@127.0.0.1:1/runs"
    ), done.stderr
    assert "Traceback" not in done.stderr and ":pw@" not in done.stderr

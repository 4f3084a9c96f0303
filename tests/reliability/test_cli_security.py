"""`backprop-live serve`: loopback by default; any other interface needs a token or --insecure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from app.cli import is_loopback, main
from app.config import PROJECT_ROOT
from tests.reliability.support import serve_process

TOKEN = "correct-horse-battery-staple-7f3a9c"


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """Replaces uvicorn.run: records what `serve` would listen on, and the app it built."""
    monkeypatch.delenv("BACKPROP_LIVE_TOKEN", raising=False)
    monkeypatch.delenv("BACKPROP_LIVE_HOST", raising=False)
    monkeypatch.setenv("BACKPROP_LIVE_DB", str(tmp_path / "cli.db"))
    seen: dict[str, Any] = {}

    def run(app: Any, **kwargs: Any) -> None:
        seen.update(kwargs, app=app)

    monkeypatch.setattr(uvicorn, "run", run)
    return seen


def _refused(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *argv],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_default_bind_is_loopback(served: dict[str, Any]) -> None:
    assert main(["serve", "--port", "8123"]) == 0
    assert served["host"] == "127.0.0.1" and served["port"] == 8123


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "myhost.example"])
def test_public_host_without_token_exits_2_with_a_clear_message(host: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BACKPROP_LIVE_TOKEN"}
    env["BACKPROP_LIVE_DB"] = str(tmp_path / "never.db")
    result = _refused(["serve", "--host", host, "--port", "1"], env)
    assert result.returncode == 2
    assert "BACKPROP_LIVE_TOKEN" in result.stderr and "--insecure" in result.stderr
    assert host in result.stderr
    assert not (tmp_path / "never.db").exists()  # refused before anything was opened


def test_public_host_with_a_token_serves_behind_it(served: dict[str, Any]) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--token", TOKEN]) == 0
    assert served["host"] == "0.0.0.0"
    with TestClient(served["app"]) as client:
        assert client.get("/api/runs").status_code == 401
        assert client.get("/api/diagnostics").status_code == 401
        assert client.get("/api/health").status_code == 200
        authed = {"authorization": f"Bearer {TOKEN}"}
        assert client.get("/api/runs", headers=authed).status_code == 200
        assert client.get("/api/diagnostics", headers=authed).status_code == 200


def test_token_from_the_environment(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKPROP_LIVE_TOKEN", TOKEN)
    assert main(["serve", "--host", "0.0.0.0"]) == 0
    with TestClient(served["app"]) as client:
        assert client.get("/api/runs").status_code == 401
        assert client.get("/api/runs", headers={"authorization": f"Bearer {TOKEN}"}).is_success


def test_insecure_serves_without_a_token_and_warns(
    served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--insecure"]) == 0
    assert served["host"] == "0.0.0.0"
    assert "without a token" in capsys.readouterr().err
    with TestClient(served["app"]) as client:
        assert client.get("/api/runs").status_code == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("10.0.0.1", False),
     ("example.org", False)],
)  # fmt: skip
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_token_never_reaches_the_logs(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with (
        log.open("wb") as sink,
        serve_process(
            tmp_path / "t.db",
            "--log-level",
            "debug",
            env={"BACKPROP_LIVE_TOKEN": TOKEN},
            output=sink,
        ) as server,
    ):
        client = server.client
        assert client.get("/api/runs").status_code == 401
        assert client.get("/api/runs", headers={"authorization": "Bearer wrong"}).status_code == 401
        ok = client.get("/api/runs", headers={"authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        signed_in = client.post("/login", data={"token": TOKEN, "next": "/"})
        assert signed_in.status_code == 303
    text = log.read_text(errors="replace")
    assert "GET /api/runs" in text and "POST /login" in text  # the access log was on
    assert TOKEN not in text

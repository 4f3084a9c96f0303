"""Start-up fails fast, and says what to do, when `npm ci` has not run; what the app
sets up for the process while it runs."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import PROJECT_ROOT, Settings, SettingsError
from app.main import GIL_SWITCH_INTERVAL, SetupError, create_app


def test_missing_front_end_packages_stop_start_up_with_the_fix(
    settings: Settings, tmp_path: Path
) -> None:
    empty = tmp_path / "node_modules"
    empty.mkdir()
    with pytest.raises(SetupError) as info:
        create_app(dataclasses.replace(settings, node_modules=empty))
    message = str(info.value)
    assert "htmx.org/dist" in message and "npm ci" in message


def test_missing_front_end_files_are_named(settings: Settings, tmp_path: Path) -> None:
    partial = tmp_path / "node_modules"
    for folder in ("htmx.org/dist", "htmx-ext-sse/dist", "swagger-ui-dist"):
        (partial / folder).mkdir(parents=True)
    (partial / "htmx.org/dist/htmx.min.js").write_text("")
    with pytest.raises(SetupError) as info:
        create_app(dataclasses.replace(settings, node_modules=partial))
    message = str(info.value)
    assert "htmx-ext-sse/dist/sse.js" in message and "swagger-ui-dist/swagger-ui.css" in message
    assert "htmx.min.js" not in message


def test_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {"BACKPROP_LIVE_DB": "/tmp/x.db", "BACKPROP_LIVE_MAX_RUNNING_RUNS": "3"}
    )
    assert settings.db == "/tmp/x.db" and settings.max_running_runs == 3
    with pytest.raises(SettingsError, match="BACKPROP_LIVE_PORT"):
        Settings.from_env({"BACKPROP_LIVE_PORT": "eighty"})


@pytest.mark.parametrize(
    ("name", "bad", "good"),
    [
        ("SSE_PING_INTERVAL", ["0", "-1", "nan", "inf", "16"], ["0.01", "15"]),
        ("CHECKPOINT_INTERVAL", ["-0.5", "6", "nan"], ["0", "0.1", "5"]),
        ("BODY_TIMEOUT", ["0", "-3", "nan"], ["0.5", "600"]),
        ("MAX_RUNNING_RUNS", ["0", "-1", "1.5", "4097"], ["1", "4096"]),
        ("MAX_STORED_RUNS", ["0"], ["1"]),
        ("MAX_BODY_BYTES", ["0", "-1"], ["1"]),
        ("MAX_STREAMS_PER_CLIENT", ["0"], ["1"]),
        ("WEIGHTS_CACHE_MB", ["0", "-1", "1.5", "1048577"], ["1", "256", "1048576"]),
        ("PORT", ["0", "65536", "-1", "eighty"], ["1", "65535"]),
        (
            "DB",
            [":memory:", "mysql://h/db", "postgresql://h:port/db", "postgresql://"],
            ["runs.db", "postgresql://u:p@h:5432/db", "postgres://h/db", "postgresql:///db"],
        ),
        ("ALLOWED_HOSTS", ["a.example,,b"], ["a.example", "a,b", "*"]),
        ("EXECUTOR", ["Ray", "dask", "process"], ["local"]),
        (
            "RAY_ADDRESS",
            ["head", "head:", ":6379", "head:0", "head:65536", "head:port"],
            ["auto", "127.0.0.1:6379", "ray-head:6379", "[::1]:6379"],
        ),
    ],
)
def test_every_setting_is_bounded(name: str, bad: list[str], good: list[str]) -> None:
    for value in bad:
        with pytest.raises(SettingsError) as info:
            Settings.from_env({f"BACKPROP_LIVE_{name}": value})
        assert str(info.value).startswith(f"BACKPROP_LIVE_{name}: ")
        assert "\n" not in str(info.value)
    for value in good:
        Settings.from_env({f"BACKPROP_LIVE_{name}": value})


def test_the_executor_setting_in_plain_words() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"BACKPROP_LIVE_EXECUTOR": "dask"})
    assert str(info.value) == "BACKPROP_LIVE_EXECUTOR: must be 'local' or 'ray', got 'dask'"
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"BACKPROP_LIVE_RAY_ADDRESS": "head"})
    assert "must be 'auto' or host:port of a Ray head" in str(info.value)
    if importlib.util.find_spec("ray") is None:
        with pytest.raises(SettingsError, match=r"needs Ray installed: pip install"):
            Settings.from_env({"BACKPROP_LIVE_EXECUTOR": "ray"})
    else:
        assert Settings.from_env({"BACKPROP_LIVE_EXECUTOR": "ray"}).executor == "ray"


def test_keyword_settings_are_checked_too(settings: Settings) -> None:
    with pytest.raises(SettingsError, match="BACKPROP_LIVE_SSE_PING_INTERVAL: must be greater"):
        dataclasses.replace(settings, sse_ping_interval=0)
    with pytest.raises(SettingsError, match="BACKPROP_LIVE_MAX_RUNNING_RUNS"):
        Settings(max_running_runs=0)
    with pytest.raises(SettingsError) as info:
        Settings(token="")
    assert "BACKPROP_LIVE_TOKEN" in str(info.value)


def test_a_token_is_never_shown_in_a_settings_error() -> None:
    with pytest.raises(SettingsError) as info:
        Settings(token="")  # the only invalid token; its message hides the value anyway
    assert "hidden" in str(info.value)


def test_create_app_refuses_bad_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BACKPROP_LIVE_DB", str(tmp_path / "x.db"))
    monkeypatch.setenv("BACKPROP_LIVE_SSE_PING_INTERVAL", "0")
    with pytest.raises(SettingsError, match="BACKPROP_LIVE_SSE_PING_INTERVAL"):
        create_app()


@pytest.mark.parametrize("command", [["serve"], ["train", "--epochs", "1", "--quiet"]])
def test_the_cli_exits_2_naming_the_variable(command: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_LIVE_")}
    env |= {"BACKPROP_LIVE_DB": str(tmp_path / "x.db"), "BACKPROP_LIVE_MAX_RUNNING_RUNS": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "app", *command],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "BACKPROP_LIVE_MAX_RUNNING_RUNS: must be greater than or equal to 1" in lines[0]
    assert not (tmp_path / "x.db").exists()


def test_the_server_bounds_gil_hand_offs_while_it_runs(settings: Settings) -> None:
    """Pipe readers and the store's writer share the GIL with the event loop: while the
    app runs, a thread waiting for it waits at most GIL_SWITCH_INTERVAL, not CPython's
    5 ms (benchmarks/README.md, /api/health's p99); afterwards the old value is back."""
    before = sys.getswitchinterval()
    assert before != GIL_SWITCH_INTERVAL
    with TestClient(create_app(settings)):
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL)
    assert sys.getswitchinterval() == before

"""Start-up fails fast, and says what to do, when `npm ci` has not run; what the app
sets up for the process while it runs."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
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


def test_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {"BACKPROP_LIVE_DB": "/tmp/x.db", "BACKPROP_LIVE_MAX_RUNNING_RUNS": "3"}
    )
    assert settings.db == Path("/tmp/x.db") and settings.max_running_runs == 3
    with pytest.raises(ValueError, match="BACKPROP_LIVE_PORT"):
        Settings.from_env({"BACKPROP_LIVE_PORT": "eighty"})


def test_the_server_bounds_gil_hand_offs_while_it_runs(settings: Settings) -> None:
    """Pipe readers and the store's writer share the GIL with the event loop: while the
    app runs, a thread waiting for it waits at most GIL_SWITCH_INTERVAL, not CPython's
    5 ms (benchmarks/README.md, /api/health's p99); afterwards the old value is back."""
    before = sys.getswitchinterval()
    assert before != GIL_SWITCH_INTERVAL
    with TestClient(create_app(settings)):
        assert sys.getswitchinterval() == pytest.approx(GIL_SWITCH_INTERVAL)
    assert sys.getswitchinterval() == before

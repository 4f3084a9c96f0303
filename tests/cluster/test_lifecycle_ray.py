"""The lifecycle and SSE tests of tests/api, run again with BACKPROP_LIVE_EXECUTOR=ray on the
session's Ray head (the same test functions; only the `settings` fixture differs), and a
Ray worker that dies: its run becomes `failed`, naming it."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.api.test_events import (  # noqa: F401  (collected here with the Ray settings)
    test_every_epoch_exactly_once_in_order,
    test_resume_with_last_event_id_has_no_gap_and_no_duplicate,
    test_status_events_carry_status_and_message,
    test_stream_survives_stop_and_start_and_ends_on_delete,
    test_twenty_concurrent_subscribers_all_get_everything,
    test_weights_false_omits_layers,
)
from tests.api.test_runs import (  # noqa: F401
    test_create_and_start_runs_to_completion,
    test_delete_running_run,
    test_divergence_gives_strict_json_with_null_losses,
    test_metrics_since,
    test_patch_rules,
    test_patch_while_running_changes_the_limit,
    test_predict_while_training,
    test_reset_while_running,
    test_same_config_same_results_however_split,
    test_start_stop_start_to_completion,
    test_step_default_one_epoch_then_n,
    test_step_is_409_while_running,
)

ray = pytest.importorskip("ray") if os.environ.get("CI") != "true" else __import__("ray")


@pytest.fixture
def settings(tmp_path: Path, ray_head: str) -> Settings:
    return Settings.from_env(
        {},
        db=tmp_path / "test.db",
        checkpoint_interval=0.5,
        sse_ping_interval=1.0,
        executor="ray",
        ray_address=ray_head,
    )


@pytest.fixture(autouse=True)
def _no_actor_outlives_its_test(ray_head: str) -> Iterator[None]:
    """A server that shuts down leaves its Ray runs training (another server adopts them);
    a test's database is gone afterwards, so its actors are ended here."""
    yield
    for name in ray.util.list_named_actors():
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(name, namespace="backprop-live"), no_restart=True)


def _wait(client: TestClient, run_id: str, ok: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = client.get(f"/api/runs/{run_id}").json()
        if ok(view):
            return view
        assert time.monotonic() < deadline, f"timed out; last view {view}"
        time.sleep(0.05)  # polling the public API: there is no event to await over HTTP


def test_a_dead_ray_worker_fails_its_run_with_a_message_naming_it(client: TestClient) -> None:
    body = {"dataset": {"kind": "spiral"}, "hidden_layers": [8, 8], "epochs": 100_000}
    run = client.post("/api/runs", json={**body, "max_epochs_per_second": 50}).json()
    _wait(client, run["id"], lambda v: v["epoch"] >= 2)
    pid = client.get("/api/diagnostics").json()["workers"][run["id"]]
    assert pid is not None and pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    view = _wait(client, run["id"], lambda v: v["status"] != "running")
    assert view["status"] == "failed"
    assert "the Ray worker training this run" in view["message"]
    assert "died unexpectedly" in view["message"]
    again = client.post(f"/api/runs/{run['id']}/start")
    assert again.status_code == 409  # a failed run is reset or duplicated, not resumed

"""A server that stops normally leaves its Ray runs training; the next server on the
database (here: the same one, started again) adopts them from the stored checkpoint and
stores every epoch once. And a server never marks a Ray run it does not hold `interrupted`."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from app.config import Settings
from app.runs.models import RunCreate
from app.storage.store import open_store
from tests.runs.helpers import opened, run_async, wait_settled, wait_until

ray = pytest.importorskip("ray") if os.environ.get("CI") != "true" else __import__("ray")

BODY = {
    "dataset": {"kind": "spiral", "n_samples": 200},
    "hidden_layers": [8, 8],
    "epochs": 150,
    "max_epochs_per_second": 50,
}


@pytest.fixture
def settings(tmp_path: Path, ray_head: str) -> Settings:
    return Settings.from_env(
        {},
        db=tmp_path / "runs.db",
        checkpoint_interval=0.2,
        executor="ray",
        ray_address=ray_head,
    )


@run_async
async def test_a_restarted_server_adopts_the_run_it_left_training(settings: Settings) -> None:
    async with opened(settings) as manager:
        run = await manager.create(RunCreate.model_validate(BODY))
        hub = manager.hub(run.id)
        await wait_until(hub, lambda: hub.history.last_epoch >= 20)
    # The server went down: the run is still `running` in the store, its actor training.
    store = open_store(settings.db)
    row = store.load_run(run.id)
    store.close()
    assert row is not None and row["status"] == "running"
    assert ray.get_actor(run.id, namespace="backprop-live") is not None
    async with opened(replace(settings)) as manager:
        await wait_until(
            manager.hub(run.id), lambda: manager.registry.runs[run.id].worker is not None
        )
        hub = manager.hub(run.id)
        await wait_settled(hub, timeout=60)
        view = manager.get(run.id)
        assert view.status == "completed" and view.epoch == 150
        assert manager.metrics(run.id)["epoch"] == list(range(1, 151))
    store = open_store(settings.db)
    assert [m.epoch for m in store.load_metrics(run.id)] == list(range(1, 151))
    store.close()

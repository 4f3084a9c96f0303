"""Restarts, crashes, shutdown and determinism across every way of splitting the epochs."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import numpy as np

from app.config import Settings
from app.runs.manager import RunManager
from app.runs.models import RunCreate, RunPatch
from app.storage.store import Store
from tests.runs.helpers import opened, run_async, wait_settled, wait_until

CONFIG: dict[str, Any] = {
    "dataset": {"kind": "spiral", "n_samples": 60, "n_classes": 3},
    "hidden_layers": [6, 5],
    "optimizer": "adam",
    "learning_rate": 0.02,
    "batch_size": 7,
    "epochs": 60,
    "seed": 3,
    "start": False,
}
PROBE = np.array([[0.1, -0.2], [0.5, 0.5], [-0.7, 0.3]])


def body(**overrides: Any) -> RunCreate:
    return RunCreate.model_validate({**CONFIG, **overrides})


def outcome(m: RunManager, run_id: str) -> tuple[Any, ...]:
    view = m.get(run_id)
    return (
        view.status,
        view.epoch,
        m.weights(run_id),
        m.metrics(run_id),
        m.predict(run_id, PROBE),
    )


async def reference(m: RunManager) -> tuple[Any, ...]:
    run_id = (await m.create(body(start=True))).id
    await wait_settled(m.hub(run_id))
    return outcome(m, run_id)


async def crash(m: RunManager) -> None:
    """What a SIGKILL of the server leaves behind: workers gone, nothing settled or stored."""
    for task in list(m._tasks):
        task.cancel()
    for pid in m.diagnostics()["workers"].values():
        if pid is not None:  # None: already gone, its end being stored
            os.kill(pid, signal.SIGKILL)
    await asyncio.get_running_loop().run_in_executor(None, m.writer.shutdown, True)
    m.registry.runs.clear()


@run_async
async def test_same_result_via_start_steps_and_stop_start(settings: Settings) -> None:
    async with opened(settings) as m:
        expected = await reference(m)
        assert expected[:2] == ("completed", 60)

        stepped = (await m.create(body())).id
        while m.get(stepped).status != "completed":
            await m.step(stepped, 7)
        assert outcome(m, stepped) == expected

        paused = (await m.create(body(start=True))).id
        hub = m.hub(paused)
        for _ in range(3):
            await wait_until(hub, lambda: hub.last_epoch > 0 or hub.status != "running")
            if (await m.stop(paused)).status == "completed":
                break
            await m.start(paused)
        await wait_settled(hub)
        assert outcome(m, paused) == expected


@run_async
async def test_stop_mid_epoch_of_slow_epochs_is_exact(settings: Settings) -> None:
    # Batches of 1 over 3000 samples: an epoch is long enough that a stop abandons it.
    slow = {"dataset": {"kind": "moons", "n_samples": 3000}, "batch_size": 1, "epochs": 4}
    async with opened(settings) as m:
        stepped = (await m.create(body(**slow))).id
        for _ in range(4):
            await m.step(stepped, 1)
        expected = outcome(m, stepped)
        paused = (await m.create(body(**slow))).id
        hub = m.hub(paused)
        for attempt in range(3):
            await m.start(paused)
            if attempt:  # the first stop lands while the worker boots, later ones mid-epoch
                seen = hub.version
                await wait_until(hub, lambda seen=seen: hub.version > seen)
            view = await m.stop(paused)
            assert m.metrics(paused)["epoch"] == list(range(1, view.epoch + 1))
            assert m.weights(paused)["epoch"] == view.epoch
            if view.status == "completed":
                break
        if m.get(paused).status != "completed":
            await m.start(paused)
            await wait_settled(hub)
        assert outcome(m, paused) == expected


@run_async
async def test_restart_keeps_finished_runs_identical(settings: Settings) -> None:
    async with opened(settings) as m:
        done = (await m.create(body(start=True))).id
        await wait_settled(m.hub(done))
        paused = (await m.create(body())).id
        await m.step(paused, 11)
        before = {
            run_id: (m.get(run_id).public(), *outcome(m, run_id)) for run_id in (done, paused)
        }
        order = [v.id for v in m.list_runs()]
    async with opened(settings) as m:
        after = {run_id: (m.get(run_id).public(), *outcome(m, run_id)) for run_id in (done, paused)}
        assert after == before
        assert [v.id for v in m.list_runs()] == order == [paused, done]
        resumed = await m.step(paused, 49)
        assert resumed.status == "completed"
        assert outcome(m, paused) == outcome(m, done)


@run_async
async def test_crash_leaves_interrupted_run_that_resumes_exactly(settings: Settings) -> None:
    store = Store(settings.db)
    m = RunManager(store, settings)
    await m.startup()
    expected = await reference(m)
    run_id = (await m.create(body(epochs=60, max_epochs_per_second=400, start=True))).id
    hub = m.hub(run_id)
    await wait_until(hub, lambda: hub.last_epoch >= 5)
    await crash(m)
    store.close()

    checkpoint = Store(settings.db).load_checkpoint(run_id)
    assert checkpoint is not None and checkpoint.epoch >= 1
    async with opened(settings) as m:
        view = m.get(run_id)
        assert view.status == "interrupted" and view.message
        assert view.epoch == checkpoint.epoch
        assert m.metrics(run_id)["epoch"] == list(range(1, checkpoint.epoch + 1))
        assert view.train_loss == m.metrics(run_id)["train_loss"][-1]
        await m.patch(run_id, _patch(max_epochs_per_second=None))
        await m.start(run_id)
        await wait_settled(m.hub(run_id))
        assert outcome(m, run_id)[1:] == expected[1:]
        assert m.get(run_id).status == "completed"


@run_async
async def test_shutdown_checkpoints_running_runs_as_interrupted(settings: Settings) -> None:
    async with opened(settings) as m:
        expected = await reference(m)
        run_id = (await m.create(body(max_epochs_per_second=300, start=True))).id
        hub = m.hub(run_id)
        await wait_until(hub, lambda: hub.last_epoch >= 3)
    # `opened` ran shutdown(): the run stopped at a checkpointed epoch.
    async with opened(settings) as m:
        view = m.get(run_id)
        assert view.status == "interrupted"
        assert 3 <= view.epoch < 60
        assert m.metrics(run_id)["epoch"] == list(range(1, view.epoch + 1))
        assert m.diagnostics()["running"] == 0
        await m.patch(run_id, _patch(max_epochs_per_second=None))
        step = await m.step(run_id, 1)  # step is allowed from interrupted
        assert step.epoch == view.epoch + 1
        await m.start(run_id)
        await wait_settled(m.hub(run_id))
        assert outcome(m, run_id)[1:] == expected[1:]


def _patch(**fields: Any) -> RunPatch:
    return RunPatch.model_validate(fields)

"""The queue of a sweep's runs: oldest first as slots free, the cap exact, restarts.

Waits are on the runs' hubs (every status change bumps them), never sleeps."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from app.config import Settings
from app.runs.manager import RunManager
from app.runs.models import RunStatus
from app.runs.sweeps import SweepCreate
from app.storage.store import open_store
from tests.runs.helpers import opened, run_async, wait_until
from tests.runs.test_durability import crash

TINY = {
    "dataset": {"kind": "xor", "n_samples": 40, "noise": 0.0},
    "hidden_layers": [4],
    "batch_size": None,
    "learning_rate": 0.5,
}
SLOW = {**TINY, "epochs": 100_000, "max_epochs_per_second": 200}


@pytest.fixture
def one_slot(settings: Settings) -> Settings:
    return replace(settings, max_running_runs=1)


def sweep_body(base: dict[str, Any], n: int) -> SweepCreate:
    return SweepCreate.model_validate({"base": base, "grid": {"seed": list(range(n))}})


async def wait_status(manager: RunManager, run_id: str, status: str) -> None:
    hub = manager.hub(run_id)
    await wait_until(hub, lambda: hub.status == status)


async def watch_starts(manager: RunManager, run_ids: list[str], seen: list[str]) -> None:
    """Append each run's id when it becomes `running`; check the cap at every wake-up."""

    async def one(run_id: str) -> None:
        hub = manager.hub(run_id)
        await wait_until(hub, lambda: hub.status == "running")
        assert manager.diagnostics()["running"] <= manager.settings.max_running_runs
        seen.append(run_id)

    await asyncio.gather(*(one(r) for r in run_ids))


@run_async
async def test_queued_runs_start_oldest_first_as_slots_free(one_slot: Settings) -> None:
    async with opened(one_slot) as manager:
        sweep = await manager.create_sweep(sweep_body(SLOW, 3))
        a, b, c = (r.id for r in sweep.runs)
        assert [r.status for r in sweep.runs] == ["running", "queued", "queued"]
        # b leaves the queue and joins it again: now it is behind c
        assert (await manager.stop(b)).status == RunStatus.stopped
        assert (await manager.start(b)).status == RunStatus.queued
        seen: list[str] = []
        watcher = asyncio.create_task(watch_starts(manager, [b, c], seen))
        await manager.stop(a)
        await wait_status(manager, c, "running")
        assert manager.get(b).status == RunStatus.queued
        await manager.stop(c)
        await watcher
        assert seen == [c, b]
        assert manager.get(a).status == RunStatus.stopped
        await manager.stop_sweep(sweep.id)


@run_async
async def test_two_slots_never_overshoot_and_every_run_completes(settings: Settings) -> None:
    two = replace(settings, max_running_runs=2)
    async with opened(two) as manager:
        sweep = await manager.create_sweep(sweep_body({**TINY, "epochs": 30}, 6))
        statuses = [r.status for r in sweep.runs]
        assert statuses[2:] == [RunStatus.queued] * 4
        assert statuses[:2] == [RunStatus.running] * 2 or RunStatus.completed in statuses[:2]
        seen: list[str] = []
        await watch_starts(manager, [r.id for r in sweep.runs[2:]], seen)
        assert seen == [r.id for r in sweep.runs[2:]]  # grid order = queue order
        for run in sweep.runs:
            await wait_status(manager, run.id, "completed")


@run_async
async def test_restart_keeps_queued_runs_queued_and_requeues_running_ones(
    one_slot: Settings,
) -> None:
    async with opened(one_slot) as manager:
        sweep = await manager.create_sweep(sweep_body(SLOW, 3))
        a, b, c = (r.id for r in sweep.runs)
        hub = manager.hub(a)
        await wait_until(hub, lambda: hub.history.last_epoch >= 20)
    # the shutdown interrupted a, at its last checkpoint
    store = open_store(one_slot.db)
    row = store.load_run(a)
    before = store.load_metrics(a)
    store.close()
    assert row is not None and row["status"] == "interrupted" and row["epoch"] >= 20
    async with opened(one_slot) as manager:
        assert [s.id for s in manager.list_sweeps()] == [sweep.id]
        # a is queued again, ahead of b and c, and resumes from its checkpoint
        await wait_status(manager, a, "running")
        hub = manager.hub(a)
        await wait_until(hub, lambda: hub.history.last_epoch > row["epoch"])
        resumed = manager.metrics(a)
        assert resumed["epoch"][: len(before)] == [m.epoch for m in before]
        assert resumed["train_loss"][: len(before)] == [m.train_loss for m in before]
        assert manager.get(b).status == RunStatus.queued
        assert manager.get(c).status == RunStatus.queued
        seen: list[str] = []
        watcher = asyncio.create_task(watch_starts(manager, [b, c], seen))
        await manager.stop(a)
        await wait_status(manager, b, "running")
        await manager.stop(b)
        await watcher
        assert seen == [b, c]
        await manager.delete_sweep(sweep.id)
        assert manager.list_sweeps() == [] and manager.list_runs() == []


@run_async
async def test_after_a_crash_the_running_run_is_requeued_ahead(one_slot: Settings) -> None:
    store = open_store(one_slot.db)
    manager = RunManager(store, one_slot)
    await manager.startup()
    sweep = await manager.create_sweep(sweep_body(SLOW, 2))
    a, b = (r.id for r in sweep.runs)
    hub = manager.hub(a)
    await wait_until(hub, lambda: hub.history.last_epoch >= 5)
    await crash(manager)  # SIGKILL: the row still says `running`
    store.close()
    async with opened(one_slot) as manager:
        await wait_status(manager, a, "running")
        assert manager.get(b).status == RunStatus.queued
        await manager.stop_sweep(sweep.id)
        assert {str(r.status) for r in manager.get_sweep(sweep.id).runs} == {"stopped"}

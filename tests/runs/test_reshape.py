"""The manager's playground operations without HTTP: concurrent creates against the
stored-runs limit, and a structural PATCH racing a running worker."""

from __future__ import annotations

import asyncio
import dataclasses

from app.config import Settings
from app.runs.errors import ProblemError
from app.runs.models import RunCreate, RunPatch
from tests.runs.helpers import opened, run_async, wait_until
from tests.support import TINY_RUN


@run_async
async def test_concurrent_creates_respect_the_stored_runs_limit(settings: Settings) -> None:
    settings = dataclasses.replace(settings, max_stored_runs=5)
    async with opened(settings) as m:
        body = RunCreate.model_validate({**TINY_RUN, "start": False})
        results = await asyncio.gather(*(m.create(body) for _ in range(20)), return_exceptions=True)
        created = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, ProblemError)]
        assert len(created) == 5 and len(refused) == 15
        assert all(r.status_code == 409 for r in refused)
        assert len(m.list_runs()) == 5 == m.store.count_runs()


@run_async
async def test_structural_patches_in_a_row_while_running(settings: Settings) -> None:
    async with opened(settings) as m:
        run = await m.create(RunCreate.model_validate({**TINY_RUN, "epochs": 1_000_000}))
        hub = m.hub(run.id)
        for width in (3, 5, 2):
            await wait_until(hub, lambda: hub.last_epoch >= 2)
            view = await m.patch(run.id, RunPatch.model_validate({"hidden_layers": [width]}))
            assert view.status == "running" and view.layer_sizes == [2, width, 1]
        await wait_until(hub, lambda: hub.last_epoch >= 3)
        assert hub.latest_weights is not None and hub.latest_weights[0].shape == (2, 2)
        stopped = await m.stop(run.id)
        metrics = m.metrics(run.id)
        assert metrics["epoch"] == list(range(1, stopped.epoch + 1))
        assert len(metrics["grad_norms"][0]) == 2

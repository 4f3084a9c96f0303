"""Idle runs' weights: loaded on demand, kept within the weights cache's byte budget.

The runs here are ~1M-parameter float32 nets trained one epoch with Adam, so each
has a 12 MB checkpoint (weights and the optimizer's two moments) and 4 MB of weights.
Memory is measured with tracemalloc (NumPy reports its array data to it).
"""

from __future__ import annotations

import gc
import hashlib
import tracemalloc
from dataclasses import replace

import numpy as np
import orjson

from app.config import Settings
from app.runs.manager import RunManager
from app.runs.models import RunCreate
from app.runs.weights_cache import held_bytes
from tests.runs.helpers import opened, run_async

MB = 2**20
N_RUNS = 6
BUDGET_MB = 10  # two runs' weights (4 MB each), not three


def big_run(seed: int) -> RunCreate:
    return RunCreate.model_validate(
        {
            "dataset": {"kind": "circle", "n_samples": 40, "seed": seed},
            "hidden_layers": [1000, 1000],
            "optimizer": "adam",
            "batch_size": 40,
            "epochs": 5,
            "seed": seed,
            "start": False,
        }
    )


async def trained_runs(m: RunManager, n: int) -> list[str]:
    ids = []
    for i in range(n):
        run_id = (await m.create(big_run(i))).id
        await m.step(run_id, 1)
        ids.append(run_id)
    return ids


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@run_async
async def test_idle_runs_cost_at_most_the_budget_and_reload_the_same_weights(
    settings: Settings,
) -> None:
    settings = replace(settings, weights_cache_mb=BUDGET_MB)
    budget = BUDGET_MB * MB
    tracemalloc.start()
    try:
        async with opened(settings) as m:
            before = traced()
            ids = await trained_runs(m, N_RUNS)
            first = hashlib.sha256(b"".join(await m.weights_json(ids[0]))).digest()
            x = np.random.default_rng(0).uniform(-1, 1, (500, 2))
            for run_id in ids:  # /weights and /predict of every run, each in turn
                assert orjson.loads(b"".join(await m.weights_json(run_id)))["epoch"] == 1
                assert len(orjson.loads(await m.predict_json(run_id, x))["outputs"]) == 500
                assert m.weights_cache.bytes <= budget
            held = traced() - before  # this test keeps no big object of its own

            stats = m.weights_cache.stats()
            assert stats.bytes <= budget and 1 <= stats.entries <= 2
            assert stats.evictions >= N_RUNS - 2
            runs = [m.registry.runs[run_id] for run_id in ids]
            idle = [r for r in runs if r.params is None]
            assert len(idle) >= N_RUNS - 2
            # An idle run holds no weights, no trainer state, and its hub no layers.
            for run in idle:
                assert run.state is None and held_bytes(run) == 0
                assert run.hub is not None and run.hub._weights is None
            # What every run costs now: the budget's worth of weights, plus < 1 MB a run.
            assert held <= budget + N_RUNS * MB, f"{held / MB:.1f} MB held"
            # Evicted, then read back from the store: the same weights, the same text.
            assert runs[0].params is None
            assert hashlib.sha256(b"".join(await m.weights_json(ids[0]))).digest() == first
            hub = m.hub(ids[0])
            assert hub.layers_epoch == 1 and hub.latest_weights is not None
    finally:
        tracemalloc.stop()


@run_async
async def test_a_watched_run_keeps_its_weights_and_counts_against_the_budget(
    settings: Settings,
) -> None:
    settings = replace(settings, weights_cache_mb=BUDGET_MB)
    async with opened(settings) as m:
        ids = await trained_runs(m, 4)
        watched = m.hub(ids[0])
        with watched.subscription():
            await m.weights_json(ids[0])
            for run_id in ids[1:]:
                await m.weights_json(run_id)
            assert m.registry.runs[ids[0]].params is not None  # pinned: never dropped
            stats = m.weights_cache.stats()
            assert stats.pinned_entries == 1
            assert stats.pinned_bytes == m.get(ids[0]).n_params * 4  # float32
            assert stats.bytes <= BUDGET_MB * MB
        # The viewer left: the run is idle, and goes when the cache is next trimmed.
        m.weights_cache.trim()
        await m.weights_json(ids[1])
        await m.weights_json(ids[2])
        assert m.registry.runs[ids[0]].params is None


@run_async
async def test_a_checkpoint_leaves_memory_once_stored(settings: Settings) -> None:
    async with opened(settings) as m:
        run_id = (await m.create(big_run(0))).id
        await m.step(run_id, 2)
        run = m.registry.runs[run_id]
        # The weights stay (the cache holds them); the optimizer's 16 MB do not.
        assert run.state is None and run.params is not None
        assert held_bytes(run) == run.params.nbytes
        diagnostics = m.diagnostics()["weights_cache"]
        assert diagnostics["bytes"] == run.params.nbytes and diagnostics["entries"] == 1

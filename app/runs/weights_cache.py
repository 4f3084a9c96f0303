"""Which runs keep their weights in the server's memory: an LRU within a byte budget.

A run's weights (`Run.params`, and the live hub's views of them) are loaded on
demand from its checkpoint and stay while the run is in use. A run is *pinned*
while a worker trains it or a stream watches it (`hub.subscribers > 0`); the
others are idle and are dropped, least recently used first, as soon as the
weights held in memory pass the budget (`Settings.weights_cache_mb`). A dropped
run keeps only its row and metrics; the next read loads its weights again
(`RunRegistry.load_params`). Pinned runs are never dropped, and count against
the budget like the others, so while they alone exceed it no idle run keeps
its weights.

Touched on the event loop only (no locks): `touch` after every load or new
snapshot, `refresh` when a run drops its trainer state, `trim` whenever a run
may have become idle, `forget` when a run goes.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from app.runs.record import Run


@dataclass(frozen=True)
class CacheStats:
    """What `GET /api/diagnostics` reports under `manager.weights_cache`."""

    budget_bytes: int
    bytes: int  # every run's weights in memory, pinned ones included
    entries: int
    pinned_bytes: int
    pinned_entries: int
    loads: int  # weights read back from the store (cache misses)
    evictions: int


def held_bytes(run: Run) -> int:
    """Bytes of weights and trainer state `run` holds (what an eviction gives back)."""
    total = run.params.nbytes if run.params is not None else 0
    if run.state is not None:
        total += sum(a.nbytes for a in run.state.arrays.values())
    return total


def is_pinned(run: Run) -> bool:
    """Trained or watched: its weights are in use and stay."""
    return run.worker is not None or (run.hub is not None and run.hub.subscribers > 0)


class WeightsCache:
    def __init__(self, budget_bytes: int, release: Callable[[Run], None]) -> None:
        """`release(run)` drops the run's weights (params, state, the hub's layers)."""
        self.budget_bytes = budget_bytes
        self._release = release
        self._runs: OrderedDict[str, Run] = OrderedDict()  # least recently used first
        self._bytes: dict[str, int] = {}
        self.bytes = 0  # the sum of _bytes: every run's weights in memory
        self.loads = 0
        self.evictions = 0

    def touch(self, run: Run, *, loaded: bool = False) -> None:
        """`run` was just used (or got new weights): most recent, its size re-counted;
        then idle runs are dropped until the budget holds."""
        if loaded:
            self.loads += 1
        self.forget(run)
        self._runs[run.id] = run
        self._bytes[run.id] = size = held_bytes(run)
        self.bytes += size
        self.trim(keep=run)

    def refresh(self, run: Run) -> None:
        """Count `run`'s bytes again (it dropped its trainer state), keeping its place."""
        if run.id in self._runs:
            size = held_bytes(run)
            self.bytes += size - self._bytes[run.id]
            self._bytes[run.id] = size

    def forget(self, run: Run) -> None:
        """`run` is deleted (or holds nothing any more): no longer counted."""
        self._runs.pop(run.id, None)
        self.bytes -= self._bytes.pop(run.id, 0)

    def trim(self, keep: Run | None = None) -> None:
        """Drop idle runs' weights, least recently used first, while over budget.
        `keep` (the run being served) stays even when it alone is over budget."""
        if self.bytes <= self.budget_bytes:
            return
        for run_id in list(self._runs):
            if self.bytes <= self.budget_bytes:
                return
            run = self._runs[run_id]
            if run is keep or is_pinned(run):
                continue
            self._release(run)
            self.forget(run)
            self.evictions += 1

    async def sweep(self, every: float) -> None:
        """Runs whose last viewer left become idle without a call here: drop their
        weights within `every` seconds when the cache is over budget (a task)."""
        while True:
            await asyncio.sleep(every)
            self.trim()

    def stats(self) -> CacheStats:
        pinned = [rid for rid, run in self._runs.items() if is_pinned(run)]
        return CacheStats(
            budget_bytes=self.budget_bytes,
            bytes=self.bytes,
            entries=len(self._runs),
            pinned_bytes=sum(self._bytes[rid] for rid in pinned),
            pinned_entries=len(pinned),
            loads=self.loads,
            evictions=self.evictions,
        )

"""Heavy request work off the event loop, at most `MAX_JOBS` at a time.

Predictions, `/data`, `/weights` (reading and encoding), the dataset preview and
the step inspector can each take seconds of CPU on a big net or dataset. They
run in threads (NumPy's matrix products and the store's reads let the loop run
meanwhile), so the loop keeps answering every other client; one over the bound
waits its turn (no timeout: the client's own timeout ends it). The bound is
the machine's two cores: more would only slow each job down and grow memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

MAX_JOBS = 2


@dataclass(frozen=True)
class JobStats:
    limit: int
    running: int
    waiting: int
    done: int


class JobLimiter:
    """`await jobs.run(fn, *args)`: fn(*args) in a thread, within the bound."""

    def __init__(self, limit: int = MAX_JOBS) -> None:
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)
        self.running = 0
        self.waiting = 0
        self.done = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        job = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        job.add_done_callback(self._finished)
        # A client that goes away cancels its wait, not the thread: the slot is given
        # back only when the thread ends, so the bound holds.
        return await asyncio.shield(job)

    def _finished(self, _job: asyncio.Future[Any]) -> None:
        self.running -= 1
        self.done += 1
        self._slots.release()

    def stats(self) -> JobStats:
        return JobStats(self.limit, self.running, self.waiting, self.done)

"""Heavy request work off the event loop, at most `MAX_JOBS` at a time.

Predictions, `/data`, `/weights` (reading and encoding), the dataset preview and
the step inspector can each take seconds of CPU on a big net or dataset. They
run in the limiter's own threads (NumPy's matrix products and the store's reads
let the loop run meanwhile), so the loop keeps answering every other client;
one over the bound waits its turn (no timeout: the client's own timeout ends
it). The bound is the machine's two cores: more would only slow each job down
and grow memory. The job threads run at a lower CPU priority (`JOB_NICENESS`,
Linux: per thread), so on a busy machine the event loop's thread goes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

MAX_JOBS = 2
JOB_NICENESS = 10  # added to the job threads' nice value (0 = the loop's)


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
        self._threads = ThreadPoolExecutor(
            limit, thread_name_prefix="heavy-job", initializer=_lower_priority
        )
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
        job = asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)
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

    def shutdown(self) -> None:
        """Let the job threads end once their jobs are done (at server shutdown)."""
        self._threads.shutdown(wait=False, cancel_futures=True)


def _lower_priority() -> None:
    # Linux gives each thread its own nice value; elsewhere this changes nothing or fails.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), JOB_NICENESS)

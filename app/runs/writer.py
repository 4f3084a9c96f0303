"""The writer: every store write of the runs layer, in order, on one thread.

All writes go through one writer thread, so a big checkpoint never stalls the event
loop and writes of one run land in the order they were made. `call` awaits a store
call (status changes are awaited before the API answers: "a status the API has
reported is durable"); `later` queues one without waiting (training progress).
Reads that must see every earlier write (a run's checkpoint, its weights) go through
`call` too. The `*_stored` methods and `commit_progress` run in the writer thread
(pass them to `call`/`later`): it is the only thread that touches `Run.write_backlog`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import numpy as np

from app.nn.metrics import EpochMetrics
from app.runs.models import RunStatus
from app.runs.record import Run, utcnow
from app.storage.errors import StorageError
from app.storage.store import Checkpoint, Snapshot, Store

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreWriter:
    """Owns the store writes of `app.runs` (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-store-writer")

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store call in the writer thread, after every write queued before it."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(fn, *args, **kwargs))

    def later(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue a write behind the others without waiting (training progress)."""
        future = self._pool.submit(fn, *args, **kwargs)
        future.add_done_callback(_log_write_error)

    def shutdown(self, wait: bool = True) -> None:
        """No more writes; with `wait`, returns once the queued ones are done."""
        self._pool.shutdown(wait)

    async def set_status(self, run: Run, status: RunStatus, message: str | None) -> None:
        """The run's new status, in its record and stored (the caller shows it)."""
        run.status, run.message, run.updated_at = status, message, utcnow()
        await self.call(
            self.store.update_run,
            run.id,
            status=str(status),
            message=message,
            updated_at=run.updated_at.isoformat(),
        )

    # The four below run in the writer thread, the only one that touches write_backlog.

    def commit_progress(
        self,
        run: Run,
        metrics: list[EpochMetrics],
        state: Checkpoint | None,
        fields: dict[str, Any],
        snapshots: Sequence[Snapshot] = (),
    ) -> None:
        rows = [*run.write_backlog, *metrics]
        try:
            self.store.commit_progress(run.id, rows, state, fields, snapshots)
        except StorageError:
            run.write_backlog = rows
            raise
        run.write_backlog = []

    def rewind_stored(self, run: Run, fields: dict[str, Any]) -> int:
        run.write_backlog = []  # after the stored checkpoint: dropped like everything there
        return self.store.rewind_to_checkpoint(run.id, fields)

    def reinitialise_stored(
        self,
        run: Run,
        initial: Checkpoint | None,
        fields: dict[str, Any],
        custom: dict[str, np.ndarray] | None,
    ) -> None:
        run.write_backlog = []
        self.store.reinitialise(run.id, fields, custom, initial)

    def clear_stored(self, run: Run, fields: dict[str, Any]) -> None:
        run.write_backlog = []
        self.store.clear_progress(run.id, fields)


def _log_write_error(future: Any) -> None:
    exc = future.exception()
    if exc is not None:
        level = logging.ERROR if not isinstance(exc, StorageError) else logging.WARNING
        log.log(level, "storing training progress failed: %s", exc)

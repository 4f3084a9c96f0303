"""Any server serves any run (BACKPROP_LIVE_EXECUTOR=ray; DESIGN.md "Beyond one machine").

With the Ray executor, several servers share one database and one Ray cluster. The server
that holds a run's lease supervises it (supervisor.py) and alone writes its progress; to
every other server the run is *remote*, and `RemoteRuns` serves it there:

- its record is re-read from the store on every access (`refresh`): status, config and
  epoch as its holder stored them; a run deleted elsewhere is gone here too;
- with viewers, the server *follows* it (`follow`): it pulls the actor's messages into the
  run's hub (no store writes), filling any gap from the store (the actor keeps only what
  was not yet stored);
- commands go to the actor (`command`); a stop (and a reset, delete or structural PATCH,
  which stop the run first) waits until the holder has stored the run's end (`stop`);
- when the holder's lease lapsed (it was killed), the server adopts the run (`adopt`):
  it takes the lease and supervises the actor from the run's stored epoch. It checks on
  start-up, on each lease-renewal tick and on access.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from app.runs.executor import EOF
from app.runs.leases import LEASE_SECONDS, lease_is_live
from app.runs.models import ProblemError, RunStatus
from app.runs.ray_actor import Pulled, is_final
from app.runs.record import Run, last_metrics_of, run_from_row
from app.runs.registry import RunRegistry
from app.runs.supervisor import STOP_TIMEOUT, Supervisor
from app.runs.worker_messages import Command, Stop

log = logging.getLogger(__name__)

END_POLL = 0.1  # seconds between reads of the store while waiting for a holder's write
WATCH_EVERY = 0.5  # seconds between reads of the watched runs another server may start
Spawn = Callable[[Coroutine[Any, Any, Any], str], None]


class RemoteRuns:
    def __init__(self, registry: RunRegistry, supervisor: Supervisor, spawn: Spawn) -> None:
        self.registry = registry
        self.supervisor = supervisor
        self.executor: Any = supervisor.executor  # a RayExecutor
        self.store = registry.store
        self.owner = registry.owner
        self._spawn = spawn
        self._followers: dict[str, Any] = {}  # run id -> RayHandle pulling for the hub
        self._adopting: set[str] = set()

    @staticmethod
    def is_remote(run: Run) -> bool:
        return run.worker is None and run.status == RunStatus.running

    # ---- the stored record ------------------------------------------------------------

    def refresh(self, run: Run) -> None:
        """A run this server does not train: its record as the store has it now. One it
        trains: its config (another server may have PATCHed a live field)."""
        if not run.deleted:
            self._take_row(run, self.store.load_run(run.id))

    def refresh_all(self) -> None:
        """`refresh` for every run, from one read of the store (the runs list)."""
        rows = {row["id"]: row for row in self.store.load_runs()}
        for run in list(self.registry.runs.values()):
            with contextlib.suppress(ProblemError):
                self._take_row(run, rows.get(run.id))

    def _take_row(self, run: Run, row: dict[str, Any] | None) -> None:
        if row is None:  # deleted through another server
            if run.worker is None:
                self.registry.forget(run)
                raise ProblemError(404, f"no run with id {run.id!r}")
            return
        fresh = run_from_row(row)
        if run.worker is not None:
            if fresh.config != run.config and fresh.layer_sizes == run.layer_sizes:
                run.config = fresh.config
                self.registry.show(run)
            return
        before = (run.status, run.message, run.epoch, run.config)
        followed = run.id in self._followers and fresh.status == RunStatus.running
        # Reset or re-made elsewhere. (A followed run is ahead of its stored checkpoint.)
        remade = fresh.layer_sizes != run.layer_sizes or (
            fresh.epoch < run.epoch and fresh.status != RunStatus.running
        )
        run.status, run.message, run.updated_at = fresh.status, fresh.message, fresh.updated_at
        run.config, run.has_initial = fresh.config, fresh.has_initial
        if remade:
            run.layer_sizes, run.task, run.n_params = fresh.layer_sizes, fresh.task, fresh.n_params
            run.epoch, run.last, run.params, run.state = fresh.epoch, fresh.last, None, None
            if run.hub is not None:
                params, _ = self.registry.params(run)
                weights, biases = self.registry.views(run, params)
                run.hub.reset(self.registry.view(run), weights, biases)
                run.hub.history.extend(self.store.load_metrics(run.id))
        elif not followed and fresh.epoch > run.epoch:
            self._catch_up(run, fresh.epoch)
            if run.params_epoch < fresh.epoch:
                run.params = None  # newer weights are stored: load them on next use
        if (run.status, run.message, run.epoch, run.config) != before:
            self.registry.show(run)
        if run.status == RunStatus.running:
            self.check(run)
            if run.hub is not None and run.hub.subscribers:
                self.follow(run)  # watched here, (re)started elsewhere

    def _catch_up(self, run: Run, epoch: int) -> None:
        """Epochs after the run's known one, up to `epoch`, from the store into its hub."""
        rows = [r for r in self.store.load_metrics(run.id, since=run.epoch) if r.epoch <= epoch]
        if rows:
            run.epoch, run.last = rows[-1].epoch, last_metrics_of(rows[-1])
            if run.hub is not None:
                run.hub.publish(rows, self.registry.view(run))

    # ---- following a remote run ---------------------------------------------------------

    def follow(self, run: Run) -> None:
        """Show a remote run live here (its hub has a viewer): pull from its actor."""
        if self.is_remote(run) and run.id not in self._followers and not run.deleted:
            self._followers[run.id] = None  # claimed: one follower per run
            self._spawn(self._follow(run), f"run-{run.id}-follower")

    async def _follow(self, run: Run) -> None:
        handle = None
        try:
            handle = await self.executor.attach(run.id)
            if handle is None:
                return
            self._followers[run.id] = handle
            handle.on_pull = partial(self._fill_gap, run)
            while True:
                msg = await handle.queue.get()
                if msg is EOF or isinstance(msg, BaseException) or run.worker is not None:
                    break
                if run.deleted:
                    return
                self.supervisor.show(run, msg)
                if is_final(msg):
                    break
            await self._until_settled(run)
        except Exception:
            log.exception("following run %s failed", run.id)
        finally:
            if handle is not None:
                handle.stop_pulling()
            self._followers.pop(run.id, None)

    def _fill_gap(self, run: Run, pulled: Pulled) -> None:
        """Before a pull's messages: epochs the actor dropped (stored by the holder)."""
        if pulled.base_epoch > run.epoch:
            self._catch_up(run, pulled.base_epoch)
        if pulled.params is not None and not any(m.params is not None for _, m in pulled.messages):
            epoch, params = pulled.params
            self.registry.set_params(run, params, epoch)

    async def _until_settled(
        self, run: Run, timeout: float = STOP_TIMEOUT, *, locked: bool = False
    ) -> None:
        """Wait (reading the store) until the holder stored the run's end, or the run was
        adopted here (at once if the caller holds the run's lock, else by a task that takes
        it); then show the stored record."""
        deadline = time.monotonic() + timeout
        while run.worker is None and not run.deleted:
            row = await self.supervisor.writer.call(self.store.load_run, run.id)
            if row is None or row["status"] != RunStatus.running:
                break
            if not self._leased_elsewhere(run.id):
                if locked:
                    await self.adopt(run)
                    continue
                self.check(run)
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(END_POLL)  # the holder writes in another process
        if run.worker is None:
            with contextlib.suppress(ProblemError):
                self.refresh(run)

    # ---- commands ----------------------------------------------------------------------

    async def command(self, run: Run, msg: Command) -> None:
        """Send a command to a remote run's actor (its holder sees what follows)."""
        handle = self._followers.get(run.id) or await self.executor.attach(run.id, pull=False)
        if handle is None:
            raise ProblemError(409, "this run's trainer cannot be reached; try again", "status")
        handle.command(msg)

    async def stop(self, run: Run) -> None:
        """Stop a remote run and wait until its end is stored (the caller holds its lock)."""
        await self.command(run, Stop())
        await self._until_settled(run, STOP_TIMEOUT + LEASE_SECONDS, locked=True)
        if run.worker is not None:  # adopted meanwhile (its holder died): stop it as ours
            await self.supervisor.halt(run.worker, Stop())
        if run.status == RunStatus.running:
            raise ProblemError(409, "the run did not stop in time; try again", "status")

    # ---- adopting a run whose holder is gone ------------------------------------------

    def _leased_elsewhere(self, run_id: str) -> bool:
        lease = self.store.lease(run_id)
        return lease is not None and lease_is_live(*lease, self.owner)

    def check(self, run: Run) -> None:
        """Adopt `run` (in a task) if it is remote and its holder's lease lapsed."""
        if (
            self.is_remote(run)
            and run.id not in self._adopting
            and not self._leased_elsewhere(run.id)
        ):
            self._adopting.add(run.id)
            self._spawn(self._adopt_task(run), f"run-{run.id}-adopt")

    def check_all(self) -> None:
        """(every RENEW_EVERY) Adopt runs whose holder is gone."""
        for run in list(self.registry.runs.values()):
            self.check(run)

    async def watch(self) -> None:
        """(a task, forever) Runs watched here but trained by no one or elsewhere are
        re-read every WATCH_EVERY s: one started through another server is followed
        within that time, and a change made there shows here."""
        while True:
            await asyncio.sleep(WATCH_EVERY)
            for run in list(self.registry.runs.values()):
                watched = run.hub is not None and run.hub.subscribers > 0
                if watched and run.worker is None and run.id not in self._followers:
                    with contextlib.suppress(ProblemError):
                        self.refresh(run)

    async def _adopt_task(self, run: Run) -> None:
        try:
            async with run.lock:
                await self.adopt(run)
        except Exception:
            log.exception("adopting run %s failed", run.id)
        finally:
            self._adopting.discard(run.id)

    async def adopt(self, run: Run) -> None:
        """Take the lease of a remote run whose holder is gone and supervise its actor
        from the stored epoch; with no actor left, the run is `interrupted` (as a local
        run whose server died). The caller holds the run's lock."""
        if run.worker is not None or run.deleted:
            return
        if await self.supervisor.take_lease(run) is not None:
            return  # alive after all
        if not await asyncio.to_thread(self.executor.reachable):
            # Whether its actor lives is unknown: leave the run as it is, try again later.
            await self.supervisor.writer.call(self.store.release_lease, run.id, str(self.owner))
            return
        row = await self.supervisor.writer.call(self.store.load_run, run.id)
        handle = await self.executor.attach(run.id) if row is not None else None
        if row is None or row["status"] != RunStatus.running or handle is None:
            if handle is not None:
                handle.stop_pulling()
            if row is not None and row["status"] == RunStatus.running:
                await self.supervisor.writer.call(self.registry.recover, row)
            await self.supervisor.writer.call(self.store.release_lease, run.id, str(self.owner))
            with contextlib.suppress(ProblemError):
                self.refresh(run)
            return
        follower = self._followers.pop(run.id, None)
        if follower is not None:
            follower.detach()  # its task sees EOF and ends; the supervisor pulls from here
        fresh = run_from_row(row)
        run.epoch, run.last, run.config = fresh.epoch, fresh.last, fresh.config
        run.pending, run.pending_snapshots, run.state = [], [], None
        log.info("adopted run %s at epoch %d from a server that is gone", run.id, run.epoch)
        self.supervisor.attach(run, handle)

"""The supervisor: the worker side of the runs layer.

One trainer per training run, started by the `Executor` (executor.py): a worker process
on this machine (the default), or a Ray actor (BACKPROP_LIVE_EXECUTOR=ray). Its handle
gives the worker's messages in order on a queue, and a supervising task applies them in
order: metrics into the hub and the run's pending batch, the latest weights into an
immutable snapshot (predictions read it, also while training), and every checkpoint —
with the metrics since the previous one — to the writer, in one transaction. When the
worker ends, the run's end is stored (`_finish`) before anyone can read it.

The manager decides *when* (commands); the supervisor starts, stops and follows
workers: `launch`, `halt`, `discard`, `set_live`, `shutdown`, and keeps the leases of
the runs it trains alive (`renew_leases`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from app.config import Settings
from app.nn.metrics import EpochMetrics
from app.runs.executor import EOF, Executor, Handle, make_executor
from app.runs.leases import LEASE_SECONDS, RENEW_EVERY, lease_is_live
from app.runs.models import ProblemError, RunStatus
from app.runs.processes import Worker, outcome
from app.runs.record import Run, last_metrics_of, no_metrics, run_from_row, stored_config, utcnow
from app.runs.registry import RunRegistry
from app.runs.worker_messages import (
    Final,
    Frame,
    FromWorker,
    SetLive,
    Shutdown,
    Stop,
    WorkerJob,
)
from app.runs.writer import StoreWriter
from app.storage.errors import StorageError
from app.storage.store import PARAMS_ONLY

log = logging.getLogger(__name__)

STOP_TIMEOUT = 15.0  # seconds a worker gets to honour a stop before it is killed
SHUTDOWN_GRACE = 4.0  # seconds all workers get to checkpoint on shutdown (then killed)
FRAME_INTERVAL = 1 / 20

Spawn = Callable[[Coroutine[Any, Any, Any], str], None]


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        registry: RunRegistry,
        writer: StoreWriter,
        *,
        spawn: Spawn,
        closing: Callable[[], bool],
        on_end: Callable[[], None],
    ) -> None:
        """`spawn(coro, name)` runs a task the manager tracks; `closing()` is True once
        the server is going down; `on_end()` is called whenever a worker has ended
        (a training slot is free)."""
        self.settings = settings
        self.registry = registry
        self.writer = writer
        self.store = writer.store
        self.owner = registry.owner
        self._spawn = spawn
        self._closing = closing
        self._on_end = on_end
        self.executor: Executor = make_executor(settings.executor, settings.ray_address)

    # ---- commands -------------------------------------------------------------------

    def warm(self) -> None:
        """(a thread) A head start for the first run: the fork server, or Ray's client."""
        try:
            self.executor.warm()
        except Exception as exc:  # the first launch reports it
            log.warning("could not prepare the %s executor: %s", self.executor.name, exc)

    def check_capacity(self) -> None:
        running = self.registry.running(cluster_wide=self.executor.name == "ray")
        if running >= self.settings.max_running_runs:
            raise self._too_many(running)

    def _too_many(self, running: int) -> ProblemError:
        limit = self.settings.max_running_runs
        return ProblemError(
            409, f"too many runs are training ({running}, the limit is {limit}); stop one first"
        )

    async def take_lease(self, run: Run) -> str | None:
        """This process's lease on `run` (None), unless another live one holds it (its name)."""
        holder: str | None = await self.writer.call(
            self.store.take_lease,
            run.id,
            str(self.owner),
            time.time() + LEASE_SECONDS,
            partial(lease_is_live, me=self.owner),
        )
        return holder

    async def _store_running(self, run: Run, updated_at: str) -> None:
        """Store `run` as `running`. On a cluster (Ray) the running-runs limit is every
        server's: the count and the mark are one step in the store, so two servers
        starting runs at the same moment cannot overshoot it (`check_capacity` only
        fails fast)."""
        if self.executor.name != "ray":
            await self.writer.call(
                self.store.update_run,
                run.id,
                status=str(RunStatus.running),
                message=None,
                updated_at=updated_at,
            )
            return
        others = await self.writer.call(
            self.store.claim_running,
            run.id,
            self.settings.max_running_runs,
            message=None,
            updated_at=updated_at,
        )
        if others is not None:
            raise self._too_many(others)

    def check_not_closing(self) -> None:
        if self._closing():
            raise ProblemError(409, "the server is shutting down")

    async def launch(self, run: Run, target: int) -> Worker:
        """Start a worker training `run` up to `target` epochs; the run becomes `running`."""
        self.check_capacity()  # fail fast; checked again below, after the reads
        custom = None
        if run.config.is_custom:
            custom = await self.writer.call(self.store.load_custom, run.id)
        state = run.state
        if state is None:  # a big checkpoint takes a while to read (epoch 0: starting weights)
            state = await self.writer.call(self.store.load_checkpoint, run.id)
        if state is not None and state.epoch != run.epoch:
            # The stored record ran ahead of its checkpoint: continue from the checkpoint.
            self._rewind(run, state.epoch)
        kept = await self.writer.call(self.store.snapshot_epochs, run.id)  # history goes on
        kept += [snap[0] for snap in run.pending_snapshots]
        holder = await self.take_lease(run)
        if holder is not None:
            raise ProblemError(409, f"this run is training in another process ({holder})")
        self.registry.hub(run)
        # No await from this check until `run.worker` is set: the cap cannot be overshot.
        self.check_not_closing()
        self.check_capacity()
        params_only = state is not None and bool(state.meta.get(PARAMS_ONLY))
        job = WorkerJob(
            config=run.config,
            target=target,
            checkpoint_interval=self.settings.checkpoint_interval,
            frame_interval=FRAME_INTERVAL,
            custom=custom,
            state=state if state is not None and run.epoch > 0 and not params_only else None,
            initial_params=state.arrays["params"] if params_only and state else None,
            last_snapshot=max(kept) if kept else None,
        )
        return await self._start_worker(run, job)

    async def _start_worker(self, run: Run, job: WorkerJob) -> Worker:
        """The worker part of `launch`: the run stored `running` before its trainer
        starts, then the trainer (the executor's), and the task that supervises it."""
        worker = Worker(target=job.target)
        worker.done = asyncio.get_running_loop().create_future()
        run.worker = worker  # counts against the cap from now on
        updated_at = utcnow()
        before = {"status": str(run.status), "message": run.message}
        try:
            # Stored before the worker starts: a database that refuses the write (503)
            # must not leave a run training that the API says did not start.
            await self._store_running(run, updated_at.isoformat())
            try:
                worker.handle = await self.executor.launch(run.id, job)
            except BaseException:
                with contextlib.suppress(StorageError):
                    await self.writer.call(self.store.update_run, run.id, **before)
                raise
        except BaseException:
            run.worker = None
            worker.done.set_result(None)
            raise
        run.status, run.message, run.updated_at = RunStatus.running, None, updated_at
        self._spawn(self._supervise(run, worker), f"run-{run.id}-supervisor")
        self.registry.show(run)
        return worker

    def attach(self, run: Run, handle: Handle) -> Worker:
        """Supervise a trainer another server started (it left, or died: its lease lapsed
        and this process holds it now), from the run's stored epoch on."""
        worker = Worker(target=run.config.epochs, handle=handle)
        worker.done = asyncio.get_running_loop().create_future()
        run.worker = worker
        self._spawn(self._supervise(run, worker), f"run-{run.id}-supervisor")
        self.registry.show(run)
        return worker

    def set_live(self, worker: Worker, changes: dict[str, Any]) -> None:
        """Forward live config changes (learning rate, epochs, speed, …) to a worker."""
        if worker.handle is not None:
            worker.handle.command(SetLive(changes))

    async def discard(self, worker: Worker) -> None:
        """End a worker whose work is thrown away (its run is re-made): killed at once
        rather than asked to stop, since nothing it did is kept; returns once it is gone."""
        worker.discarded = True
        if worker.handle is not None:
            worker.handle.kill()
        if worker.done is not None:
            await asyncio.shield(worker.done)

    async def halt(self, worker: Worker, command: Stop | Shutdown) -> None:
        """Ask the worker to stop and wait until its run is stored and settled."""
        if worker.handle is not None:
            worker.handle.command(command)
        done = worker.done
        if done is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(done), STOP_TIMEOUT)
        except TimeoutError:
            log.warning(
                "worker of %s ignored %r for %.0f s; killing it",
                worker.handle.name if worker.handle else "?",
                command,
                STOP_TIMEOUT,
            )
            if worker.handle is not None:
                worker.handle.kill()
            await asyncio.shield(done)

    async def shutdown(self) -> None:
        """Ask every worker to checkpoint and end (≤ SHUTDOWN_GRACE s, then killed).
        Ray: the runs go on training on the cluster; this server only lets go of them
        (see `detach`)."""
        workers = [r.worker for r in self.registry.runs.values() if r.worker is not None]
        if self.executor.name == "ray":
            self.detach(workers)
            return
        for w in workers:
            w.shutting_down = True
            if w.handle is not None:
                w.handle.command(Shutdown())
        pending = [w.done for w in workers if w.done is not None]
        if pending:
            _, late = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE)
            for w in workers:
                if w.done in late and w.handle is not None:
                    w.handle.kill()
            if late:
                await asyncio.wait(late, timeout=1.0)

    def detach(self, workers: list[Worker]) -> None:
        """Stop following these Ray runs and give up their leases (at once, so another
        server adopts them without waiting for the leases to lapse). Their actors keep
        every message since the last stored checkpoint: the next holder goes on from it."""
        for w in workers:
            w.detached = True
            if w.handle is not None:
                w.handle.detach()

    async def renew_leases(self) -> None:
        """Keep the leases of the runs this process trains alive (a task, forever)."""
        while True:
            await asyncio.sleep(RENEW_EVERY)
            if self.registry.running():
                self.writer.later(
                    self.store.renew_leases, str(self.owner), time.time() + LEASE_SECONDS
                )
            if self.registry.remote is not None:
                self.registry.remote.check_all()  # runs whose holder is gone are adopted
                self._on_end()  # a slot another server freed: queued sweep runs take it

    # ---- following a worker ---------------------------------------------------------

    def _rewind(self, run: Run, epoch: int) -> None:
        rows = self.store.load_metrics(run.id, since=epoch - 1) if epoch else []
        run.epoch = epoch
        run.last = last_metrics_of(rows[0]) if rows and rows[0].epoch == epoch else no_metrics()
        run.pending = [m for m in run.pending if m.epoch <= epoch]
        run.pending_snapshots = [snap for snap in run.pending_snapshots if snap[0] <= epoch]
        if run.hub is not None:
            if run.params is None or run.params_epoch != epoch:
                run.params = None
                weights, biases = self.registry.views(run, self.registry.params(run)[0])
                run.hub.set_layers(weights, biases, run.params_epoch)
            run.hub.rewind(epoch, self.registry.view(run))

    def _apply(self, run: Run, msg: FromWorker) -> None:
        """A frame (or the final message) from the worker: memory, hub, store."""
        run.pending_snapshots.extend(msg.snapshots)
        if msg.state is not None:
            run.state = msg.state
        run.pending.extend(self.show(run, msg))
        if msg.state is not None and isinstance(msg, Frame):
            self._checkpoint_later(run)

    def show(self, run: Run, msg: FromWorker) -> list[EpochMetrics]:
        """A worker message's new epochs and weights into the run's memory and hub, but
        not the store (a server that follows a run another one trains does only this);
        returns the new epochs' rows."""
        rows: list[EpochMetrics] = [m for m in msg.metrics if m.epoch > run.epoch]
        if isinstance(msg, Final) and msg.reason == "diverged" and rows:
            rows = rows[:-1]  # the diverged epoch is not kept: its weights were rolled back
        if rows:
            run.epoch = rows[-1].epoch
            run.last = last_metrics_of(rows[-1])
        params = msg.params
        if params is not None:
            self.registry.set_params(run, params, run.epoch)
        run.updated_at = utcnow()
        if run.hub is not None:
            weights = biases = None
            if params is not None:
                weights, biases = self.registry.views(run, params)
            run.hub.publish(rows, self.registry.view(run), weights, biases)
        return rows

    def _checkpoint_later(self, run: Run) -> None:
        state = run.state
        if state is None:
            return
        metrics = [m for m in run.pending if m.epoch <= state.epoch]
        run.pending = [m for m in run.pending if m.epoch > state.epoch]
        snapshots = [snap for snap in run.pending_snapshots if snap[0] <= state.epoch]
        run.pending_snapshots = [snap for snap in run.pending_snapshots if snap[0] > state.epoch]
        run.state = None  # the write holds it until stored; then the store has it
        self.registry.weights_cache.refresh(run)
        self.writer.later(
            self._commit_checkpoint,
            run.worker.handle if run.worker is not None else None,
            run,
            metrics,
            state,
            {
                "epoch": state.epoch,
                "last_metrics": run.last
                if run.epoch == state.epoch
                else (last_metrics_of(metrics[-1]) if metrics else None),
                "updated_at": run.updated_at.isoformat(),
            },
            snapshots,
        )

    def _commit_checkpoint(self, handle: Handle | None, run: Run, *args: Any) -> None:
        """(writer thread) Store a checkpoint with its metrics, then tell the trainer
        it is stored (a Ray actor drops what it kept for a next holder up to it)."""
        self.writer.commit_progress(run, *args)
        state = args[1]
        if handle is not None and state is not None:
            handle.stored(int(state.epoch))

    async def _supervise(self, run: Run, worker: Worker) -> None:
        final: Final | None = None
        broken: str | None = None
        try:
            while True:
                msg = await worker.handle.queue.get()
                if msg is EOF:
                    break
                if isinstance(msg, BaseException):
                    broken = f"{type(msg).__name__}: {msg}"
                    break
                if worker.discarded or worker.detached:
                    continue  # its run is being re-made: read on to the end, keep nothing
                self._apply(run, msg)
                if isinstance(msg, Final):
                    final = msg
                    break
            if worker.detached:
                return
            ended = await worker.handle.join()
            if worker.discarded:
                return
            status, message = outcome(run, worker, final, broken, ended)
            await self._finish(run, final, status, message)
        except StorageError as exc:
            log.warning("storing the end of run %s failed: %s", run.id, exc)
            run.status, run.message = RunStatus.failed, f"could not store the run's end: {exc}"
        except Exception:
            log.exception("supervising run %s failed", run.id)
            run.status, run.message = RunStatus.failed, "internal error while supervising the run"
        finally:
            self._settle(run, worker)

    def _settle(self, run: Run, worker: Worker) -> None:
        """A worker has ended (its run's end stored, or given up): the slot is free."""
        run.worker = None
        # Behind the run's last writes in the writer's queue: the end is stored first.
        self.writer.later(self.store.release_lease, run.id, str(self.owner))
        if worker.handle is not None and not worker.detached:
            worker.handle.release()
        self.registry.show(run)
        self.registry.weights_cache.refresh(run)  # its trainer state is stored and gone
        self.registry.weights_cache.trim()  # the run may be idle now
        if worker.done is not None and not worker.done.done():
            worker.done.set_result(None)
        self._on_end()  # sweeps: the oldest queued run takes the slot

    async def _finish(
        self, run: Run, final: Final | None, status: RunStatus, message: str | None
    ) -> None:
        """Store the run's end (pending metrics, final checkpoint, status), then show it:
        a status anyone can read is already durable."""
        if self.executor.name == "ray":  # another server may have PATCHed a live field
            row = await self.writer.call(self.store.load_run, run.id)
            if row is not None:
                run.config = run_from_row(row).config
        if run.epoch > run.config.epochs:
            # epochs was lowered below a fast worker's epoch
            run.config = run.config.replace(epochs=run.epoch)
        updated_at = utcnow()
        fields: dict[str, Any] = {
            "status": str(status),
            "message": message,
            "config": stored_config(run),
            "updated_at": updated_at.isoformat(),
        }
        state = run.state if final is not None and final.state is not None else None
        if final is None and status == RunStatus.interrupted:
            # Killed during shutdown: like a crash, fall back to the last stored checkpoint.
            run.pending, run.pending_snapshots = [], []
            epoch = await self.writer.call(self.writer.rewind_stored, run, fields)
            run.state, run.params = None, None
            run.status, run.message, run.updated_at = status, message, updated_at
            self._rewind(run, epoch)
            return
        fields.update(epoch=run.epoch, last_metrics=run.last)
        metrics, run.pending = run.pending, []
        snapshots, run.pending_snapshots = run.pending_snapshots, []
        await self.writer.call(self.writer.commit_progress, run, metrics, state, fields, snapshots)
        run.status, run.message, run.updated_at = status, message, updated_at
        run.state = None  # stored now; a big net's optimizer state need not stay in memory

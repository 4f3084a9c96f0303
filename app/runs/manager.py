"""RunManager: the runs layer's registry and commands (API.md's every run operation).

The manager is the one entry of `app.runs` for the API, the UI and the CLI. It is
composed of:

- `RunRegistry` (registry.py): every run's in-memory record, its view, hub and weights;
- `StoreWriter` (writer.py): every store write, in order, on one thread;
- `Supervisor` (supervisor.py): the worker side — starts, stops and follows the
  worker processes, and stores each run's progress and end;
- `RunQueries` (queries.py, its base class): every read.

The commands below decide what happens to a run (each under the run's lock) and
leave the how to those parts. Sweeps and the queue of `queued` runs: the
`SweepQueue` mixin (sweeps.py). A run's in-memory record, and how a create request
becomes one, are in `record.py`.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import numpy as np

from app.config import Settings
from app.runs.cluster import RemoteRuns
from app.runs.leases import new_owner
from app.runs.models import (
    LIVE_FIELDS,
    MAX_STEP_EPOCHS,
    ProblemError,
    RunCreate,
    RunPatch,
    RunStatus,
    RunView,
    filled_schedule,
)
from app.runs.queries import RunQueries
from app.runs.record import (
    Run,
    flat_params,
    initial_checkpoint,
    initial_params,
    no_metrics,
    prepare_run,
    run_from_row,
    stored_config,
    stored_row,
    utcnow,
)
from app.runs.registry import RunRegistry
from app.runs.reshape import reshape, structural_changes
from app.runs.supervisor import Supervisor
from app.runs.sweeps import SweepQueue
from app.runs.worker_messages import SetLive, Stop
from app.runs.writer import StoreWriter
from app.storage.store import PARAMS_ONLY, Checkpoint, Store

WEIGHTS_SWEEP_EVERY = 5.0  # seconds between checks for idle runs' weights over budget


class RunManager(RunQueries, SweepQueue):
    """See INTERNALS.md `app.runs`; every public method raises ProblemError for 404/409/422.
    The reads are `RunQueries`'; sweeps and the queue the `SweepQueue` mixin's."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.settings = settings
        writer = StoreWriter(store)
        self.owner = new_owner()  # the name of this process's leases
        registry = RunRegistry(store, writer, self.owner, settings.weights_cache_mb * 2**20)
        super().__init__(store, registry, writer)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._creating = 0  # creates past the stored-runs check, not yet in the registry
        self.supervisor = Supervisor(
            settings,
            registry,
            writer,
            spawn=self._spawn,
            closing=lambda: self._closing,
            on_end=self._on_slot_free,
        )
        if self.supervisor.executor.name == "ray":  # any server serves any run
            self.registry.remote = RemoteRuns(registry, self.supervisor, self._spawn)
            self.registry.on_cluster = self.supervisor.executor.on_cluster  # type: ignore[attr-defined]
        self._init_sweeps()  # sweeps

    # ---- lifecycle ----------------------------------------------------------------------

    async def startup(self) -> None:
        """Load every run; runs left `running` by a process that no longer trains them
        (no live lease) become `interrupted`, with the metrics after their checkpoint
        dropped. A run another live process trains is left to it (see
        `RunRegistry.adopt_stored_runs`)."""
        # Warm the fork server (it imports NumPy and the trainer once) in the background,
        # so the first run starts as fast as the others.
        asyncio.get_running_loop().run_in_executor(None, self.supervisor.warm)
        self.registry.adopt_stored_runs(startup=True)
        self._spawn(self.supervisor.renew_leases(), "lease-renewer")
        if self.registry.remote is not None:  # Ray: runs watched here, trained elsewhere
            self._spawn(self.registry.remote.watch(), "remote-runs-watcher")
        self._spawn(self.weights_cache.sweep(WEIGHTS_SWEEP_EVERY), "weights-sweep")
        await self._load_sweeps()  # sweeps: re-queue interrupted sweep runs, start the queue

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def shutting_down(self) -> bool:
        """The server is going down: live streams should end now."""
        return self._closing

    def begin_shutdown(self) -> None:
        """The server got SIGTERM/SIGINT: end every live stream at once.

        uvicorn runs the lifespan shutdown (and so `shutdown()`) only after every
        connection has closed, and an SSE stream never closes by itself; waking
        the hubs lets each stream see `shutting_down` and finish.
        """
        self._closing = True
        for run in self.registry.runs.values():
            if run.hub is not None:
                run.hub.wake()

    async def shutdown(self) -> None:
        """Checkpoint and stop every worker (≤ ~5 s); their runs become `interrupted`."""
        self._closing = True
        await self.supervisor.shutdown()
        for task in list(self._tasks):
            if not task.done():
                task.cancel()
        self.jobs.shutdown()
        await asyncio.get_running_loop().run_in_executor(None, self.writer.shutdown, True)

    async def _set_status(self, run: Run, status: RunStatus, message: str | None) -> None:
        """A new status, stored, then shown."""
        await self.writer.set_status(run, status, message)
        self.registry.show(run)

    # ---- commands -----------------------------------------------------------------------

    async def create(self, body: RunCreate) -> RunView:
        """Validate against the dataset, store, and start if `body.start`."""
        self._check_room()
        if body.start:
            self.supervisor.check_capacity()
        # The slot is taken before the first await: concurrent creates cannot overshoot.
        self._creating += 1
        try:
            run, custom = await asyncio.to_thread(prepare_run, body)
            await self._insert(run, custom)
        finally:
            self._creating -= 1
        if body.start:
            try:
                return await self.start(run.id)
            except ProblemError:
                await self.delete(run.id)
                raise
        return self.registry.view(run)

    def _check_room(self) -> None:
        if len(self.registry.runs) + self._creating >= self.settings.max_stored_runs:
            raise ProblemError(
                409,
                f"too many stored runs (limit {self.settings.max_stored_runs}); delete some first",
            )

    async def _insert(self, run: Run, custom: dict[str, np.ndarray] | None) -> None:
        await self.writer.call(
            self.store.insert_run, stored_row(run), custom, initial_checkpoint(run)
        )
        self.registry.runs[run.id] = run
        self.weights_cache.touch(run)  # its creation weights (prepare_run drew them)

    async def start(self, run_id: str) -> RunView:
        """Start or continue (from the latest checkpoint) → `running`."""
        run = self.registry.get(run_id)
        async with run.lock:
            self.registry.check_alive(run)
            if run.status.is_active:
                return self.registry.view(run)
            if not run.status.can_start(run.epoch, run.config.epochs):
                if run.status.needs_reset:
                    text = f"a {run.status} run cannot be started; reset it first"
                else:
                    text = f"the run is completed at epoch {run.epoch}; raise `epochs` to continue"
                raise ProblemError(409, text, "status")
            if run.epoch >= run.config.epochs:
                await self._set_status(run, RunStatus.completed, None)
                return self.registry.view(run)
            if await self._queue_if_no_slot(run):  # sweeps: a sweep's run waits its turn
                return self.registry.view(run)
            await self.supervisor.launch(run, target=run.config.epochs)
            return self.registry.view(run)

    async def stop(self, run_id: str) -> RunView:
        """Pause after the current batch; returns once the epoch is final and stored."""
        run = self.registry.get(run_id)
        async with run.lock:
            self.registry.check_alive(run)
            if run.status == RunStatus.queued:  # sweeps: leaves the queue
                await self._set_status(run, RunStatus.stopped, None)
            if run.worker is not None:
                await self.supervisor.halt(run.worker, Stop())
            elif self._remote(run):  # trained by another server
                await self.registry.remote.stop(run)
            return self.registry.view(run)

    async def step(self, run_id: str, epochs: int = 1) -> RunView:
        """Train min(epochs, config.epochs - epoch) epochs now → stopped/completed/diverged."""
        if not 1 <= int(epochs) <= MAX_STEP_EPOCHS:
            raise ProblemError(422, f"epochs must be 1-{MAX_STEP_EPOCHS}", "epochs")
        run = self.registry.get(run_id)
        async with run.lock:
            self.registry.check_alive(run)
            if not run.status.can_step:
                raise ProblemError(
                    409,
                    f"step is allowed from created, stopped or interrupted, not {run.status}",
                    "status",
                )
            target = min(run.epoch + int(epochs), run.config.epochs)
            if target <= run.epoch:
                await self._set_status(run, RunStatus.completed, None)
                return self.registry.view(run)
            worker = await self.supervisor.launch(run, target=target)
        if worker.done is not None:
            await asyncio.shield(worker.done)
        return self.registry.view(run)

    async def reset(self, run_id: str) -> RunView:
        """Stop if running, back to the creation weights at epoch 0 → `created`."""
        run = self.registry.get(run_id)
        async with run.lock:
            self.registry.check_alive(run)
            await self._stop_remote(run)
            if run.worker is not None:
                await self.supervisor.halt(run.worker, Stop())
            params = await asyncio.to_thread(self._start_params, run)
            run.state = None  # the store keeps a run's own starting weights (initial_weights)
            self.registry.set_params(run, params, 0)
            run.epoch, run.last, run.pending = 0, no_metrics(), []
            run.pending_snapshots = []
            run.status, run.message, run.updated_at = RunStatus.created, None, utcnow()
            await self.writer.call(
                self.writer.clear_stored,
                run,
                {
                    "status": str(run.status),
                    "message": None,
                    "epoch": 0,
                    "last_metrics": None,
                    "updated_at": run.updated_at.isoformat(),
                },
            )
            if run.hub is not None:
                weights, biases = self.registry.views(run, params)
                run.hub.reset(self.registry.view(run), weights, biases)
            return self.registry.view(run)

    def _start_params(self, run: Run) -> np.ndarray:
        """The weights a reset goes back to: the run's own `initial_weights`, else its seed's."""
        own = self.store.load_initial(run.id) if run.has_initial else None
        return own.astype(run.config.dtype) if own is not None else initial_params(run)

    async def patch(self, run_id: str, body: RunPatch) -> RunView:
        """Change any field (API.md v1.1): live fields in place — forwarded to a running
        worker — and structural ones by re-initialising the run in place (`_reshape`)."""
        changes = body.changes()
        run = self.registry.get(run_id)
        async with run.lock:
            self.registry.check_alive(run)
            epochs = changes.get("epochs")
            if epochs is not None and epochs < run.epoch:
                raise ProblemError(
                    422, f"epochs ({epochs}) is below the current epoch ({run.epoch})", "epochs"
                )
            if structural_changes(run, changes):
                return await self._reshape(run, changes)
            live = {k: v for k, v in changes.items() if k in LIVE_FIELDS}
            if not live:
                return self.registry.view(run)
            # Stored first: a change the database refuses (503) changes nothing.
            config = run.config.replace(**live)
            config = config.replace(lr_schedule=filled_schedule(config.lr_schedule, config.epochs))
            if "lr_schedule" in live:
                live["lr_schedule"] = config.lr_schedule
            status, message = run.status, run.message
            if status == RunStatus.completed and config.epochs > run.epoch:
                status, message = RunStatus.stopped, None
            updated_at = utcnow()
            await self.writer.call(
                self.store.update_run,
                run.id,
                name=config.name,
                config=stored_config(run, config),
                status=str(status),
                message=message,
                updated_at=updated_at.isoformat(),
            )
            run.config = config
            run.status, run.message, run.updated_at = status, message, updated_at
            forward = {k: v for k, v in live.items() if k != "name"}
            if run.worker is not None and forward:
                self.supervisor.set_live(run.worker, forward)
            elif forward and self._remote(run):  # its holder stores the end with these
                await self.registry.remote.command(run, SetLive(forward))
            self.registry.show(run)
            return self.registry.view(run)

    async def _reshape(self, run: Run, changes: dict[str, Any]) -> RunView:
        """Re-initialise `run` in place with its patched config (caller holds the lock):
        validated before anything changes, then stopped, stored as new (epoch 0, no
        metrics or checkpoint), shown to subscribers as a fresh snapshot, and started
        again if it was running."""
        custom = None
        if run.config.is_custom:
            custom = await self.writer.call(self.store.load_custom, run.id)
        reshaped = await asyncio.to_thread(reshape, run, changes, custom)
        was_running = await self._stop_remote(run) or run.worker is not None
        if run.worker is not None:
            self.supervisor.check_not_closing()
            await self.supervisor.discard(run.worker)
        new = reshaped.run
        updated_at = utcnow()
        await self.writer.call(
            self.writer.reinitialise_stored,
            run,
            initial_checkpoint(new),
            {
                "name": new.config.name,
                "config": stored_config(new),
                "status": str(RunStatus.created),
                "message": None,
                "epoch": 0,
                "last_metrics": None,
                "updated_at": updated_at.isoformat(),
            },
            reshaped.custom,
        )
        run.config, run.layer_sizes, run.task = new.config, new.layer_sizes, new.task
        run.n_params, run.has_initial, run.state = new.n_params, new.has_initial, None
        self.registry.set_params(run, new.params, 0)
        run.epoch, run.last, run.pending = 0, no_metrics(), []
        run.pending_snapshots = []
        run.status, run.message, run.updated_at = RunStatus.created, None, updated_at
        if run.hub is not None:
            weights, biases = self.registry.views(run, new.params)
            run.hub.reset(self.registry.view(run), weights, biases)
        if was_running:
            await self.supervisor.launch(run, target=run.config.epochs)
        return self.registry.view(run)

    async def put_weights(self, run_id: str, layers: Any) -> None:
        """Replace the current weights (API.md v1.1 `PUT /weights`); epoch, metrics and
        optimizer state stay. Durable: the checkpoint (or, before the first epoch, the
        starting weights) is stored with them before anyone sees them. The conversion
        (4M numbers take ~0.5 s) is a job, off the event loop."""
        run = self.registry.get(run_id)
        async with run.lock:
            self.registry.check_alive(run)
            if run.worker is not None or self._remote(run):
                raise ProblemError(409, "stop the run before editing its weights", "status")
            use_bias, dtype = bool(run.config.use_bias), run.config.dtype
            params = await self.jobs.run(
                lambda: flat_params(layers, run.layer_sizes, use_bias).astype(dtype)
            )
            state = run.state or await self.writer.call(self.store.load_checkpoint, run.id)
            if state is not None and state.epoch == run.epoch and "params" in state.arrays:
                checkpoint = Checkpoint(state.epoch, {**state.arrays, "params": params}, state.meta)
            else:  # no trainer state at this epoch: the weights alone, to start from
                checkpoint = Checkpoint(run.epoch, {"params": params}, {PARAMS_ONLY: True})
            await self.writer.call(self.store.commit_progress, run.id, (), checkpoint, None)
            run.state = None  # stored: the optimizer's arrays need not stay in memory
            self.registry.set_params(run, params, run.epoch)
            if run.hub is not None:
                weights, biases = self.registry.views(run, params)
                run.hub.replace_layers(self.registry.view(run), weights, biases)

    async def duplicate(self, run_id: str) -> RunView:
        """A new run that copies this one as last stored: config, data, metrics, weights
        and trainer state (a running run is copied at its last checkpoint)."""
        source = self.registry.get(run_id)
        self.registry.check_alive(source)
        self._check_room()
        self._creating += 1
        try:
            new_id = uuid.uuid4().hex[:12]
            name = f"{source.config.name} (copy)"[:80]
            now = utcnow()
            await self.writer.call(self.store.copy_run, source.id, new_id, name, now.isoformat())
            row = await self.writer.call(self.store.load_run, new_id)
        finally:
            self._creating -= 1
        if row is None:  # the source was deleted meanwhile
            raise ProblemError(404, f"no run with id {run_id!r}")
        if row["status"] in (RunStatus.running, RunStatus.created) and row["epoch"] > 0:
            row["status"] = RunStatus.stopped
        elif row["status"] == RunStatus.running:
            row["status"] = RunStatus.created
        row["message"] = None
        await self.writer.call(
            self.store.update_run, new_id, status=str(row["status"]), message=None
        )
        self.registry.runs[new_id] = run_from_row(row)
        return self.registry.view(self.registry.runs[new_id])

    async def delete(self, run_id: str) -> None:
        """Stop it if running, delete it and its data; its streams end."""
        run = self.registry.get(run_id)
        async with run.lock:
            self.registry.check_alive(run)
            await self._stop_remote(run)
            if run.worker is not None:
                await self.supervisor.halt(run.worker, Stop())
            await self.writer.call(self.store.delete_run, run.id)
            self.registry.forget(run)

    def _remote(self, run: Run) -> bool:
        """Whether another server trains `run` (Ray executor only)."""
        return self.registry.remote is not None and self.registry.remote.is_remote(run)

    async def _stop_remote(self, run: Run) -> bool:
        """A run another server trains is stopped (its end stored there) before this one
        changes it; True if it was training."""
        if not self._remote(run):
            return False
        await self.registry.remote.stop(run)
        return True

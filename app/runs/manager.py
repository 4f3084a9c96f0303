"""RunManager: every run's record, its worker process, its live hub, its persistence.

One worker process per training run (`app.runs.worker`, forkserver context).
Each worker has a reader thread that blocks on the pipe and hands messages to
the event loop (`call_soon_threadsafe`; `processes.py` has that plumbing), and a
supervisor task that applies
them in order: metrics into the hub and the pending batch, the latest weights
into an immutable snapshot (predictions read it, also while training), and
every checkpoint — with the metrics since the previous one — into the store in
one transaction. All writes go through one writer thread, in order, so a big
checkpoint never stalls the loop; status changes are awaited before the API
answers ("a status the API has reported is durable"). A run's in-memory record,
and how a create request becomes one, are in `record.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from functools import partial
from typing import Any, TypeVar

import numpy as np

from app.config import Settings
from app.nn.datasets import dataset_to_json, make_dataset, teacher_network
from app.nn.network import param_views
from app.runs import reads
from app.runs.broadcast import LayersLoader, MetricsHistory, RunHub, layers_public
from app.runs.exports import ExportSource
from app.runs.jobs import JobLimiter
from app.runs.leases import LEASE_SECONDS, RENEW_EVERY, lease_is_live, new_owner
from app.runs.models import (
    LIVE_FIELDS,
    MAX_EPOCHS,
    MAX_STEP_EPOCHS,
    ProblemError,
    RunCreate,
    RunPatch,
    RunStatus,
    RunView,
    filled_schedule,
)
from app.runs.processes import (
    EOF,
    Worker,
    exit_text,
    join,
    kill,
    pid_of,
    read_pipe,
    send,
    warm_forkserver,
)
from app.runs.record import (
    METRIC_KEYS,
    Run,
    flat_params,
    initial_checkpoint,
    initial_params,
    last_metrics_of,
    network_of,
    no_metrics,
    prepare_run,
    run_from_row,
    stored_config,
    stored_row,
    utcnow,
)
from app.runs.reshape import reshape, structural_changes
from app.runs.step_inspector import StepInputs, inspect_step
from app.runs.sweeps import SweepQueue
from app.runs.weights_cache import WeightsCache
from app.runs.worker import dataset_spec, run_worker
from app.storage.errors import StorageError
from app.storage.store import PARAMS_ONLY, Checkpoint, MetricRow, Snapshot, Store

log = logging.getLogger(__name__)
T = TypeVar("T")

STOP_TIMEOUT = 15.0  # seconds a worker gets to honour a stop before it is killed
SHUTDOWN_GRACE = 4.0  # seconds all workers get to checkpoint on shutdown (then killed)
FRAME_INTERVAL = 1 / 20
WEIGHTS_SWEEP_EVERY = 5.0  # seconds between checks for idle runs' weights over budget


class RunManager(SweepQueue):
    """See INTERNALS.md `app.runs`; every public method raises ProblemError for 404/409/422.
    Sweeps and the queue of `queued` runs: the `SweepQueue` mixin (app.runs.sweeps)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._runs: dict[str, Run] = {}
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-store-writer")
        self._mp = multiprocessing.get_context("forkserver")
        # Children start from a server that already imported NumPy and the trainer.
        self._mp.set_forkserver_preload(["app.runs.worker"])
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._creating = 0  # creates past the stored-runs check, not yet in _runs
        self.owner = new_owner()  # the name of this process's leases
        # Idle runs' weights within a byte budget (weights_cache.py); heavy reads off the loop.
        self.weights_cache = WeightsCache(settings.weights_cache_mb * 2**20, self._release_weights)
        self.jobs = JobLimiter()
        self._init_sweeps()  # sweeps

    # ---- lifecycle ----------------------------------------------------------------------

    async def startup(self) -> None:
        """Load every run; runs left `running` by a process that no longer trains them
        (no live lease) become `interrupted`, with the metrics after their checkpoint
        dropped. A run another live process trains is left to it (see `_adopt_stored_runs`)."""
        # Warm the fork server (it imports NumPy and the trainer once) in the background,
        # so the first run starts as fast as the others.
        asyncio.get_running_loop().run_in_executor(None, warm_forkserver)
        self._adopt_stored_runs(startup=True)
        self._spawn(self._renew_leases(), "lease-renewer")
        self._spawn(self.weights_cache.sweep(WEIGHTS_SWEEP_EVERY), "weights-sweep")
        await self._load_sweeps()  # sweeps: re-queue interrupted sweep runs, start the queue

    def _leased_elsewhere(self, run_id: str) -> bool:
        lease = self.store.lease(run_id)
        return lease is not None and lease_is_live(*lease, self.owner)

    def _recover(self, row: dict[str, Any]) -> None:
        """A `running` row nobody trains any more: `interrupted` at its checkpoint."""
        message = (
            "the server stopped while this run was training; "
            "start it to continue from its last checkpoint"
        )
        now = utcnow().isoformat()
        fields = {"status": str(RunStatus.interrupted), "message": message, "updated_at": now}
        epoch = self.store.rewind_to_checkpoint(row["id"], fields)
        lease = self.store.lease(row["id"])
        if lease is not None:
            self.store.release_lease(row["id"], lease[0])
        last = self.store.load_metrics(row["id"], since=epoch - 1) if epoch else []
        row.update(
            status=RunStatus.interrupted,
            message=message,
            epoch=epoch,
            updated_at=now,
            last_metrics=last_metrics_of(last[0]) if last else None,
        )

    async def _renew_leases(self) -> None:
        """Keep the leases of the runs this process trains alive."""
        while True:
            await asyncio.sleep(RENEW_EVERY)
            if any(r.worker is not None for r in self._runs.values()):
                self._write_later(
                    self.store.renew_leases, str(self.owner), time.time() + LEASE_SECONDS
                )

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
        for run in self._runs.values():
            if run.hub is not None:
                run.hub.wake()

    async def shutdown(self) -> None:
        """Checkpoint and stop every worker (≤ ~5 s); their runs become `interrupted`."""
        self._closing = True
        workers = [r.worker for r in self._runs.values() if r.worker is not None]
        for w in workers:
            w.shutting_down = True
            send(w.conn, ("shutdown",))
        pending = [w.done for w in workers if w.done is not None]
        if pending:
            _, late = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE)
            for w in workers:
                if w.done in late:
                    kill(w.process)
            if late:
                await asyncio.wait(late, timeout=1.0)
        for task in list(self._tasks):
            if not task.done():
                task.cancel()
        self.jobs.shutdown()
        await asyncio.get_running_loop().run_in_executor(None, self._writer.shutdown, True)

    # ---- queries ------------------------------------------------------------------------

    def list_runs(self) -> list[RunView]:
        """Every run, newest first."""
        self._adopt_stored_runs()
        return [self._view(r) for r in reversed(self._runs.values())]

    def _adopt_stored_runs(self, startup: bool = False) -> None:
        """Pick up the runs of our database that this process does not hold yet: at
        start-up all of them, later those another process (`backprop-live train`)
        stored. A run still training elsewhere, under a live lease, is left until it
        ends; one whose trainer is gone (its lease lapsed) comes back `interrupted`."""
        if not startup and self.store.count_runs() <= len(self._runs):
            return
        for row in self.store.load_runs():
            if row["id"] in self._runs:
                continue
            if row["status"] == RunStatus.running:
                if self._leased_elsewhere(row["id"]):
                    continue
                self._recover(row)
            self._runs[row["id"]] = run_from_row(row)

    def get(self, run_id: str) -> RunView:
        return self._view(self._get(run_id))

    def metrics(self, run_id: str, since: int = 0) -> dict[str, list[Any]]:
        """API.md columnar metrics of epochs > since, plus `grad_norms` (per epoch, per layer)."""
        run = self._get(run_id)
        # Beyond any epoch, and within SQLite's 64-bit integers.
        since = min(max(0, int(since)), MAX_EPOCHS)
        if run.hub is not None:
            return run.hub.history.slice(since)
        # No live hub (the run is idle): read the store without loading weights.
        history = MetricsHistory(n_layers=len(run.layer_sizes) - 1)
        history.extend(self.store.load_metrics(run.id, since))
        return history.slice(since)

    def weights(self, run_id: str, epoch: int | None = None) -> dict[str, Any]:
        """{"epoch", "layers": [{"weights": (n_out, n_in) lists, "biases": list | None}]}: the
        current weights, or with `epoch` the kept snapshot with the largest epoch ≤ it."""
        run = self._get(run_id)
        if epoch is None:
            params, at = self._params(run)
        else:
            at, params = self._kept(run, epoch)
        weights, biases = self._views(run, params)
        return {"epoch": at, "layers": layers_public(weights, biases)}

    def snapshots(self, run_id: str) -> dict[str, list[int]]:
        """The epochs whose weights are kept (API.md v1.1 "Weight history"), ascending."""
        run = self._get(run_id)
        kept = set(self.store.snapshot_epochs(run.id))
        kept.update(snap[0] for snap in run.pending_snapshots)
        return {"epochs": sorted(kept)}

    def _kept(self, run: Run, epoch: int) -> tuple[int, np.ndarray]:
        """(epoch, weights) of the kept snapshot at or before `epoch`; 404 when none is."""
        found = self._snapshot(run, epoch)
        if found is None:
            raise ProblemError(404, f"no weights kept at or before epoch {epoch}", "epoch")
        return found

    def _snapshot(self, run: Run, epoch: int) -> tuple[int, np.ndarray] | None:
        """The kept weights with the largest epoch ≤ `epoch` (not yet stored ones included)."""
        if epoch < 0:
            raise ProblemError(422, "epoch must be 0 or more", "epoch")
        stored = self.store.load_snapshot(run.id, epoch)
        recent = [snap for snap in run.pending_snapshots if snap[0] <= epoch]
        best = max(recent, key=lambda snap: snap[0]) if recent else None
        if stored is not None and (best is None or stored[0] >= best[0]):
            return stored
        return best

    def data(self, run_id: str) -> dict[str, Any]:
        """{"train": {"x", "y"}, "test": {...}}, y in the form `custom` takes it."""
        run = self._get(run_id)
        custom = (
            self.store.load_custom(run.id) if run.config["dataset"]["kind"] == "custom" else None
        )
        return dataset_to_json(make_dataset(dataset_spec(run.config, custom)))

    async def weights_json(self, run_id: str, epoch: int | None = None) -> list[bytes]:
        """`weights(run_id, epoch)` as JSON, in pieces that join to the whole text (a big
        net's is ~100 MB: sent piece by piece), encoded off the event loop (a job); the
        current weights are read off the loop too (a kept snapshot is read on it)."""
        run = self._get(run_id)
        if epoch is None:
            params, at = await self._load_params(run)
        else:
            at, params = self._kept(run, epoch)
        weights, biases = self._views(run, params)
        return await self.jobs.run(reads.weights_parts, at, weights, biases)

    async def data_json(self, run_id: str) -> bytes:
        """`data()` as JSON bytes, built and encoded off the event loop (a job)."""
        run = self._get(run_id)
        custom = None
        if run.config["dataset"]["kind"] == "custom":
            custom = await self.jobs.run(self.store.load_custom, run.id)
        spec = dataset_spec(run.config, custom)
        return await self.jobs.run(lambda: reads.encode_data(make_dataset(spec)))

    def predict(self, run_id: str, inputs: Any) -> dict[str, Any]:
        """Outputs (n, n_out) of the latest weights for inputs (n, n_in), on the caller's
        thread (the API uses `predict_json`)."""
        run = self._get(run_id)
        x = reads.checked_inputs(inputs, self._view(run).n_inputs)
        params, _ = self._params(run)
        return reads.predict(network_of(run), params, x, run.config.get("features"), run.task)

    async def predict_json(self, run_id: str, inputs: Any) -> bytes:
        """`predict()` as JSON bytes, computed off the event loop (a job)."""
        run = self._get(run_id)
        x = reads.checked_inputs(inputs, self._view(run).n_inputs)
        params, _ = await self._load_params(run)
        net, features = network_of(run), run.config.get("features")
        return await self.jobs.run(reads.predict_json, net, params, x, features, run.task)

    async def inspect(
        self, run_id: str, batch: int = 0, sample: int = 0, *, limit: int = 64, check: bool = True
    ) -> dict[str, Any]:
        """One plain-SGD step's numbers on batch ``batch`` of the unshuffled training set
        (see `app.runs.step_inspector.inspect_step`), from one snapshot of the weights taken at
        the call (also while training), computed off the event loop as a job. ``check=False``
        leaves `gradient_check` empty (it costs a few forward passes of the batch per layer)."""
        await self._load_params(self._get(run_id))  # read off the loop; step_inputs finds them
        inputs = self.step_inputs(run_id)
        return await self.jobs.run(inspect_step, inputs, batch, sample, limit, check)

    def step_inputs(self, run_id: str) -> StepInputs:
        """The inspector's inputs: one snapshot of the run's weights (never mutated), its
        config and custom data (`app.runs.inspecting` applies a step with it)."""
        run = self._get(run_id)
        params, epoch = self._params(run)  # never mutated: a consistent snapshot
        config = {**run.config, "dataset": dict(run.config["dataset"])}
        custom = self.store.load_custom(run.id) if config["dataset"]["kind"] == "custom" else None
        net = network_of(run)
        net.params[...] = params
        weights, biases = self._views(run, params)
        return StepInputs(net, weights, biases, config, custom, run.task, epoch)

    def export_source(self, run_id: str) -> ExportSource:
        """(export) The latest weights as arrays, config and custom points, for export.npz."""
        run = self._get(run_id)
        params, epoch = self._params(run)  # never mutated: a consistent snapshot
        weights, biases = self._views(run, params)
        custom = (
            self.store.load_custom(run.id) if run.config["dataset"]["kind"] == "custom" else None
        )
        config = {**run.config, "dataset": dict(run.config["dataset"])}
        return ExportSource(config, list(run.layer_sizes), weights, biases, epoch, custom)

    def hub(self, run_id: str) -> RunHub:
        return self._hub(self._get(run_id))

    def diagnostics(self) -> dict[str, Any]:
        """Counts for leak checks: subscribers, tasks, threads, workers, open fds."""
        try:
            fds = len(os.listdir("/proc/self/fd"))
        except OSError:
            fds = -1
        # A worker counts until its run's end is stored (it holds its slot that long).
        workers = {r.id: pid_of(r.worker) for r in self._runs.values() if r.worker is not None}
        return {
            "runs": len(self._runs),
            "running": len(workers),
            "workers": workers,
            "subscribers": sum(r.hub.subscribers for r in self._runs.values() if r.hub),
            "hubs": sum(1 for r in self._runs.values() if r.hub is not None),
            "tasks": _task_count(),
            "threads": threading.active_count(),
            "fds": fds,
            "weights_cache": asdict(self.weights_cache.stats()),
            "jobs": asdict(self.jobs.stats()),
        }

    # ---- commands -----------------------------------------------------------------------

    async def create(self, body: RunCreate) -> RunView:
        """Validate against the dataset, store, and start if `body.start`."""
        self._check_room()
        if body.start:
            self._check_capacity()
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
        return self._view(run)

    def _check_room(self) -> None:
        if len(self._runs) + self._creating >= self.settings.max_stored_runs:
            raise ProblemError(
                409,
                f"too many stored runs (limit {self.settings.max_stored_runs}); delete some first",
            )

    def _check_not_closing(self) -> None:
        if self._closing:
            raise ProblemError(409, "the server is shutting down")

    async def _insert(self, run: Run, custom: dict[str, np.ndarray] | None) -> None:
        await self._db(self.store.insert_run, stored_row(run), custom, initial_checkpoint(run))
        self._runs[run.id] = run
        self.weights_cache.touch(run)  # its creation weights (prepare_run drew them)

    async def start(self, run_id: str) -> RunView:
        """Start or continue (from the latest checkpoint) → `running`."""
        run = self._get(run_id)
        async with run.lock:
            self._check_alive(run)
            if run.status in (RunStatus.running, RunStatus.queued):
                return self._view(run)
            if run.status in (RunStatus.diverged, RunStatus.failed):
                raise ProblemError(
                    409, f"a {run.status} run cannot be started; reset it first", "status"
                )
            if run.epoch >= run.config["epochs"]:
                if run.status == RunStatus.completed:
                    raise ProblemError(
                        409,
                        f"the run is completed at epoch {run.epoch}; raise `epochs` to continue",
                        "status",
                    )
                await self._set_status(run, RunStatus.completed, None)
                return self._view(run)
            if await self._queue_if_no_slot(run):  # sweeps: a sweep's run waits its turn
                return self._view(run)
            await self._launch(run, target=run.config["epochs"])
            return self._view(run)

    async def stop(self, run_id: str) -> RunView:
        """Pause after the current batch; returns once the epoch is final and stored."""
        run = self._get(run_id)
        async with run.lock:
            self._check_alive(run)
            if run.status == RunStatus.queued:  # sweeps: leaves the queue
                await self._set_status(run, RunStatus.stopped, None)
            if run.worker is not None:
                await self._halt(run.worker, "stop")
            return self._view(run)

    async def step(self, run_id: str, epochs: int = 1) -> RunView:
        """Train min(epochs, config.epochs - epoch) epochs now → stopped/completed/diverged."""
        if not 1 <= int(epochs) <= MAX_STEP_EPOCHS:
            raise ProblemError(422, f"epochs must be 1-{MAX_STEP_EPOCHS}", "epochs")
        run = self._get(run_id)
        async with run.lock:
            self._check_alive(run)
            if run.status not in (RunStatus.created, RunStatus.stopped, RunStatus.interrupted):
                raise ProblemError(
                    409,
                    f"step is allowed from created, stopped or interrupted, not {run.status}",
                    "status",
                )
            target = min(run.epoch + int(epochs), run.config["epochs"])
            if target <= run.epoch:
                await self._set_status(run, RunStatus.completed, None)
                return self._view(run)
            worker = await self._launch(run, target=target)
        if worker.done is not None:
            await asyncio.shield(worker.done)
        return self._view(run)

    async def reset(self, run_id: str) -> RunView:
        """Stop if running, back to the creation weights at epoch 0 → `created`."""
        run = self._get(run_id)
        async with run.lock:
            self._check_alive(run)
            if run.worker is not None:
                await self._halt(run.worker, "stop")
            params = await asyncio.to_thread(self._start_params, run)
            run.state = None  # the store keeps a run's own starting weights (initial_weights)
            self._set_params(run, params, 0)
            run.epoch, run.last, run.pending = 0, no_metrics(), []
            run.pending_snapshots = []
            run.status, run.message, run.updated_at = RunStatus.created, None, utcnow()
            await self._db(
                self._clear_stored,
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
                weights, biases = self._views(run, params)
                run.hub.reset(self._view(run), weights, biases)
            return self._view(run)

    def _start_params(self, run: Run) -> np.ndarray:
        """The weights a reset goes back to: the run's own `initial_weights`, else its seed's."""
        own = self.store.load_initial(run.id) if run.has_initial else None
        return own.astype(run.config["dtype"]) if own is not None else initial_params(run)

    async def patch(self, run_id: str, body: RunPatch) -> RunView:
        """Change any field (API.md v1.1): live fields in place — forwarded to a running
        worker — and structural ones by re-initialising the run in place (`_reshape`)."""
        changes = body.changes()
        run = self._get(run_id)
        async with run.lock:
            self._check_alive(run)
            epochs = changes.get("epochs")
            if epochs is not None and epochs < run.epoch:
                raise ProblemError(
                    422, f"epochs ({epochs}) is below the current epoch ({run.epoch})", "epochs"
                )
            if structural_changes(run, changes):
                return await self._reshape(run, changes)
            live = {k: v for k, v in changes.items() if k in LIVE_FIELDS}
            if not live:
                return self._view(run)
            # Stored first: a change the database refuses (503) changes nothing.
            config = {**run.config, **live}
            config["lr_schedule"] = filled_schedule(config.get("lr_schedule"), config["epochs"])
            if "lr_schedule" in live:
                live["lr_schedule"] = config["lr_schedule"]
            status, message = run.status, run.message
            if status == RunStatus.completed and config["epochs"] > run.epoch:
                status, message = RunStatus.stopped, None
            updated_at = utcnow()
            await self._db(
                self.store.update_run,
                run.id,
                name=config["name"],
                config=stored_config(run, config),
                status=str(status),
                message=message,
                updated_at=updated_at.isoformat(),
            )
            run.config = config
            run.status, run.message, run.updated_at = status, message, updated_at
            forward = {k: v for k, v in live.items() if k != "name"}
            if run.worker is not None and forward:
                send(run.worker.conn, ("set", forward))
            if run.hub is not None:
                run.hub.set_view(self._view(run))
            return self._view(run)

    async def _reshape(self, run: Run, changes: dict[str, Any]) -> RunView:
        """Re-initialise `run` in place with its patched config (caller holds the lock):
        validated before anything changes, then stopped, stored as new (epoch 0, no
        metrics or checkpoint), shown to subscribers as a fresh snapshot, and started
        again if it was running."""
        custom = None
        if run.config["dataset"]["kind"] == "custom":
            custom = await self._db(self.store.load_custom, run.id)
        reshaped = await asyncio.to_thread(reshape, run, changes, custom)
        was_running = run.worker is not None
        if was_running:
            self._check_not_closing()
            await self._discard(run.worker)
        new = reshaped.run
        updated_at = utcnow()
        await self._db(
            self._reinitialise_stored,
            run,
            initial_checkpoint(new),
            {
                "name": new.config["name"],
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
        self._set_params(run, new.params, 0)
        run.epoch, run.last, run.pending = 0, no_metrics(), []
        run.pending_snapshots = []
        run.status, run.message, run.updated_at = RunStatus.created, None, updated_at
        if run.hub is not None:
            weights, biases = self._views(run, new.params)
            run.hub.reset(self._view(run), weights, biases)
        if was_running:
            await self._launch(run, target=run.config["epochs"])
        return self._view(run)

    async def put_weights(self, run_id: str, layers: Any) -> None:
        """Replace the current weights (API.md v1.1 `PUT /weights`); epoch, metrics and
        optimizer state stay. Durable: the checkpoint (or, before the first epoch, the
        starting weights) is stored with them before anyone sees them. The conversion
        (4M numbers take ~0.5 s) is a job, off the event loop."""
        run = self._get(run_id)
        async with run.lock:
            self._check_alive(run)
            if run.worker is not None:
                raise ProblemError(409, "stop the run before editing its weights", "status")
            use_bias, dtype = bool(run.config["use_bias"]), run.config["dtype"]
            params = await self.jobs.run(
                lambda: flat_params(layers, run.layer_sizes, use_bias).astype(dtype)
            )
            state = run.state or await self._db(self.store.load_checkpoint, run.id)
            if state is not None and state.epoch == run.epoch and "params" in state.arrays:
                checkpoint = Checkpoint(state.epoch, {**state.arrays, "params": params}, state.meta)
            else:  # no trainer state at this epoch: the weights alone, to start from
                checkpoint = Checkpoint(run.epoch, {"params": params}, {PARAMS_ONLY: True})
            await self._db(self.store.commit_progress, run.id, (), checkpoint, None)
            run.state = None  # stored: the optimizer's arrays need not stay in memory
            self._set_params(run, params, run.epoch)
            if run.hub is not None:
                weights, biases = self._views(run, params)
                run.hub.replace_layers(self._view(run), weights, biases)

    async def duplicate(self, run_id: str) -> RunView:
        """A new run that copies this one as last stored: config, data, metrics, weights
        and trainer state (a running run is copied at its last checkpoint)."""
        source = self._get(run_id)
        self._check_alive(source)
        self._check_room()
        self._creating += 1
        try:
            new_id = uuid.uuid4().hex[:12]
            name = f"{source.config['name']} (copy)"[:80]
            now = utcnow()
            await self._db(self.store.copy_run, source.id, new_id, name, now.isoformat())
            row = await self._db(self.store.load_run, new_id)
        finally:
            self._creating -= 1
        if row is None:  # the source was deleted meanwhile
            raise ProblemError(404, f"no run with id {run_id!r}")
        if row["status"] in (RunStatus.running, RunStatus.created) and row["epoch"] > 0:
            row["status"] = RunStatus.stopped
        elif row["status"] == RunStatus.running:
            row["status"] = RunStatus.created
        row["message"] = None
        await self._db(self.store.update_run, new_id, status=str(row["status"]), message=None)
        self._runs[new_id] = run_from_row(row)
        return self._view(self._runs[new_id])

    def teacher(self, run_id: str) -> dict[str, Any]:
        """The teacher network of a `teacher` run (API.md v1.1): layers and activation."""
        run = self._get(run_id)
        spec = run.config["dataset"]
        if spec["kind"] != "teacher":
            raise ProblemError(404, f"run {run_id!r} is not trained on a teacher network")
        net = teacher_network(
            spec["teacher_layers"],
            spec["teacher_activation"],
            int(spec["seed"]),
            float(spec.get("teacher_weight_scale", 1.0)),
        )
        return {
            "layers": layers_public(net.weights, net.biases),
            "activation": spec["teacher_activation"],
        }

    async def delete(self, run_id: str) -> None:
        """Stop it if running, delete it and its data; its streams end."""
        run = self._get(run_id)
        async with run.lock:
            self._check_alive(run)
            if run.worker is not None:
                await self._halt(run.worker, "stop")
            await self._db(self.store.delete_run, run.id)
            run.deleted = True
            self._runs.pop(run.id, None)
            self.weights_cache.forget(run)
            if run.hub is not None:
                run.hub.close()

    # ---- internals: records -------------------------------------------------------------

    def _get(self, run_id: str) -> Run:
        run = self._runs.get(run_id)
        if run is None:
            self._adopt_stored_runs()
            run = self._runs.get(run_id)
        if run is None:
            raise ProblemError(404, f"no run with id {run_id!r}")
        return run

    @staticmethod
    def _check_alive(run: Run) -> None:
        if run.deleted:
            raise ProblemError(404, f"no run with id {run.id!r}")

    def _view(self, run: Run) -> RunView:
        return RunView(
            id=run.id,
            name=run.config["name"],
            status=run.status,
            message=run.message,
            config={**run.config, "dataset": dict(run.config["dataset"])},
            layer_sizes=run.layer_sizes,
            task=run.task,
            n_params=run.n_params,
            epoch=run.epoch,
            created_at=run.created_at,
            updated_at=run.updated_at,
            **{k: run.last.get(k) for k in METRIC_KEYS},
        )

    def _params(self, run: Run) -> tuple[np.ndarray, int]:
        """The latest weights snapshot (flat) and its epoch, loading it on this thread
        when the run holds none (`_load_params` loads it off the loop)."""
        loaded = run.params is None
        if loaded:
            run.params, run.params_epoch = self._read_params(run)
        self.weights_cache.touch(run, loaded=loaded)
        return run.params, run.params_epoch

    async def _load_params(self, run: Run) -> tuple[np.ndarray, int]:
        """`_params`, with the read (a big checkpoint takes a while) in the writer
        thread: after every write queued before it, off the event loop."""
        if run.params is None:
            generation = run.params_generation
            params, epoch = await self._db(self._read_params, run)
            # Unless newer weights came (and went) meanwhile, these are the latest.
            if run.params is None and run.params_generation == generation:
                run.params, run.params_epoch = params, epoch
                self.weights_cache.touch(run, loaded=True)
        return self._params(run)

    def _read_params(self, run: Run) -> tuple[np.ndarray, int]:
        """The stored checkpoint's weights (the optimizer's arrays stay on disk), or the
        creation weights without one."""
        stored = self.store.load_params(run.id)
        if stored is None:
            return initial_params(run), 0
        return stored[1], stored[0]

    def _set_params(self, run: Run, params: np.ndarray, epoch: int) -> None:
        """New weights for `run` (a frame, a reset, an edit): held, and counted."""
        run.params, run.params_epoch = params, epoch
        run.params_generation += 1
        self.weights_cache.touch(run)

    def _release_weights(self, run: Run) -> None:
        """The weights cache drops an idle run's weights: they load again on next use."""
        run.params, run.state = None, None
        if run.hub is not None:
            run.hub.release_layers(self._layers_loader(run))

    def _layers_loader(self, run: Run) -> LayersLoader:
        def load_layers() -> tuple[list[np.ndarray], list[np.ndarray] | None, int]:
            params, epoch = self._params(run)
            weights, biases = self._views(run, params)
            return weights, biases, epoch

        return load_layers

    def _views(
        self, run: Run, params: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        return param_views(params, run.layer_sizes, bool(run.config["use_bias"]))

    def _hub(self, run: Run) -> RunHub:
        if run.hub is None:
            hub = RunHub(self._view(run), self._layers_loader(run))
            hub.history.extend(self.store.load_metrics(run.id))
            hub.history.extend(run.pending)
            run.hub = hub
        return run.hub

    # ---- internals: persistence ---------------------------------------------------------

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store call in the writer thread, after every write queued before it."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, partial(fn, *args, **kwargs))

    # The three below run in the writer thread, the only one that touches write_backlog.

    def _commit_progress(
        self,
        run: Run,
        metrics: list[MetricRow],
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

    def _rewind_stored(self, run: Run, fields: dict[str, Any]) -> int:
        run.write_backlog = []  # after the stored checkpoint: dropped like everything there
        return self.store.rewind_to_checkpoint(run.id, fields)

    def _reinitialise_stored(
        self,
        run: Run,
        initial: Checkpoint | None,
        fields: dict[str, Any],
        custom: dict[str, np.ndarray] | None,
    ) -> None:
        run.write_backlog = []
        self.store.reinitialise(run.id, fields, custom, initial)

    def _clear_stored(self, run: Run, fields: dict[str, Any]) -> None:
        run.write_backlog = []
        self.store.clear_progress(run.id, fields)

    def _write_later(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue a write behind the others without waiting (training progress)."""
        future = self._writer.submit(fn, *args, **kwargs)
        future.add_done_callback(_log_write_error)

    async def _set_status(self, run: Run, status: RunStatus, message: str | None) -> None:
        run.status, run.message, run.updated_at = status, message, utcnow()
        await self._db(
            self.store.update_run,
            run.id,
            status=str(status),
            message=message,
            updated_at=run.updated_at.isoformat(),
        )
        if run.hub is not None:
            run.hub.set_view(self._view(run))

    # ---- internals: workers -------------------------------------------------------------

    def _check_capacity(self) -> None:
        running = sum(1 for r in self._runs.values() if r.worker is not None)
        if running >= self.settings.max_running_runs:
            raise ProblemError(
                409,
                f"too many runs are training ({running}, the limit is "
                f"{self.settings.max_running_runs}); stop one first",
            )

    async def _launch(self, run: Run, target: int) -> Worker:
        """Start a worker training `run` up to `target` epochs; the run becomes `running`."""
        self._check_capacity()  # fail fast; checked again below, after the reads
        custom = None
        if run.config["dataset"]["kind"] == "custom":
            custom = await self._db(self.store.load_custom, run.id)
        state = run.state
        if state is None:  # a big checkpoint takes a while to read (epoch 0: starting weights)
            state = await self._db(self.store.load_checkpoint, run.id)
        if state is not None and state.epoch != run.epoch:
            # The stored record ran ahead of its checkpoint: continue from the checkpoint.
            self._rewind(run, state.epoch)
        kept = await self._db(self.store.snapshot_epochs, run.id)  # where the history goes on
        kept += [snap[0] for snap in run.pending_snapshots]
        holder = await self._db(
            self.store.take_lease,
            run.id,
            str(self.owner),
            time.time() + LEASE_SECONDS,
            partial(lease_is_live, me=self.owner),
        )
        if holder is not None:
            raise ProblemError(409, f"this run is training in another process ({holder})")
        hub = self._hub(run)
        # No await from this check until `run.worker` is set: the cap cannot be overshot.
        self._check_not_closing()
        self._check_capacity()
        params_only = state is not None and bool(state.meta.get(PARAMS_ONLY))
        job = {
            "config": run.config,
            "custom": custom,
            "state": (
                (state.arrays, state.meta)
                if state is not None and run.epoch > 0 and not params_only
                else None
            ),
            "initial_params": state.arrays["params"] if params_only and state else None,
            "last_snapshot": max(kept) if kept else None,
            "target": target,
            "checkpoint_interval": self.settings.checkpoint_interval,
            "frame_interval": FRAME_INTERVAL,
        }
        parent_conn, child_conn = self._mp.Pipe(duplex=True)
        process = self._mp.Process(
            target=run_worker, args=(child_conn, job), name=f"run-{run.id}", daemon=True
        )
        loop = asyncio.get_running_loop()
        worker = Worker(process=process, conn=parent_conn, target=target)
        worker.done = loop.create_future()
        run.worker = worker  # counts against the cap from now on
        updated_at = utcnow()
        before = {"status": str(run.status), "message": run.message}
        try:
            # Stored before the worker starts: a database that refuses the write (503)
            # must not leave a run training that the API says did not start.
            await self._db(
                self.store.update_run,
                run.id,
                status=str(RunStatus.running),
                message=None,
                updated_at=updated_at.isoformat(),
            )
            try:
                await asyncio.to_thread(process.start)
            except BaseException:
                with contextlib.suppress(StorageError):
                    await self._db(self.store.update_run, run.id, **before)
                raise
        except BaseException:
            run.worker = None
            worker.done.set_result(None)
            parent_conn.close()
            child_conn.close()
            raise
        child_conn.close()
        worker.thread = threading.Thread(
            target=read_pipe,
            args=(parent_conn, loop, worker.queue),
            name=f"run-{run.id}-reader",
            daemon=True,
        )
        worker.thread.start()
        run.status, run.message, run.updated_at = RunStatus.running, None, updated_at
        self._spawn(self._supervise(run, worker), f"run-{run.id}-supervisor")
        hub.set_view(self._view(run))
        return worker

    def _rewind(self, run: Run, epoch: int) -> None:
        rows = self.store.load_metrics(run.id, since=epoch - 1) if epoch else []
        run.epoch = epoch
        run.last = last_metrics_of(rows[0]) if rows and rows[0].epoch == epoch else no_metrics()
        run.pending = [m for m in run.pending if m.epoch <= epoch]
        run.pending_snapshots = [snap for snap in run.pending_snapshots if snap[0] <= epoch]
        if run.hub is not None:
            if run.params is None or run.params_epoch != epoch:
                run.params = None
                weights, biases = self._views(run, self._params(run)[0])
                run.hub.set_layers(weights, biases, run.params_epoch)
            run.hub.rewind(epoch, self._view(run))

    async def _discard(self, worker: Worker) -> None:
        """End a worker whose work is thrown away (its run is re-made): killed at once
        rather than asked to stop, since nothing it did is kept; returns once it is gone."""
        worker.discarded = True
        kill(worker.process)
        if worker.done is not None:
            await asyncio.shield(worker.done)

    async def _halt(self, worker: Worker, command: str) -> None:
        """Ask the worker to stop and wait until its run is stored and settled."""
        send(worker.conn, (command,))
        done = worker.done
        if done is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(done), STOP_TIMEOUT)
        except TimeoutError:
            log.warning(
                "worker %s ignored %r for %.0f s; killing it",
                worker.process.pid,
                command,
                STOP_TIMEOUT,
            )
            kill(worker.process)
            await asyncio.shield(done)

    def _apply(self, run: Run, msg: dict[str, Any]) -> None:
        """A frame (or the final message) from the worker: memory, hub, store."""
        rows: list[MetricRow] = [m for m in msg["metrics"] if m.epoch > run.epoch]
        run.pending_snapshots.extend(msg.get("snapshots") or ())
        if msg.get("reason") == "diverged" and rows:
            rows = rows[:-1]  # the diverged epoch is not kept: its weights were rolled back
        if rows:
            run.epoch = rows[-1].epoch
            run.last = last_metrics_of(rows[-1])
            run.pending.extend(rows)
        params = msg.get("params")
        state = msg.get("state")
        if state is not None:
            arrays, meta = state
            run.state = Checkpoint(int(meta["epoch"]), arrays, meta)
        if params is not None:
            self._set_params(run, params, run.epoch)
        run.updated_at = utcnow()
        if run.hub is not None:
            weights = biases = None
            if params is not None:
                weights, biases = self._views(run, params)
            run.hub.publish(rows, self._view(run), weights, biases)
        if state is not None and msg["type"] == "frame":
            self._checkpoint_later(run)

    def _checkpoint_later(self, run: Run) -> None:
        state = run.state
        if state is None:
            return
        metrics = [m for m in run.pending if m.epoch <= state.epoch]
        run.pending = [m for m in run.pending if m.epoch > state.epoch]
        snapshots = [snap for snap in run.pending_snapshots if snap[0] <= state.epoch]
        run.pending_snapshots = [snap for snap in run.pending_snapshots if snap[0] > state.epoch]
        run.state = None  # the write holds it until stored; then the store has it
        self.weights_cache.refresh(run)
        self._write_later(
            self._commit_progress,
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

    async def _supervise(self, run: Run, worker: Worker) -> None:
        final: dict[str, Any] | None = None
        broken: str | None = None
        try:
            while True:
                msg = await worker.queue.get()
                if msg is EOF:
                    break
                if isinstance(msg, BaseException):
                    broken = f"{type(msg).__name__}: {msg}"
                    break
                if worker.discarded:
                    continue  # its run is being re-made: read on to the end, keep nothing
                self._apply(run, msg)
                if msg["type"] == "final":
                    final = msg
                    break
            exitcode = await asyncio.to_thread(join, worker.process)
            if worker.discarded:
                return
            status, message = self._outcome(run, worker, final, broken, exitcode)
            await self._finish(run, final, status, message)
        except StorageError as exc:
            log.warning("storing the end of run %s failed: %s", run.id, exc)
            run.status, run.message = RunStatus.failed, f"could not store the run's end: {exc}"
        except Exception:
            log.exception("supervising run %s failed", run.id)
            run.status, run.message = RunStatus.failed, "internal error while supervising the run"
        finally:
            run.worker = None
            # Behind the run's last writes in the writer's queue: the end is stored first.
            self._write_later(self.store.release_lease, run.id, str(self.owner))
            with contextlib.suppress(OSError):
                worker.conn.close()
            if run.hub is not None:
                run.hub.set_view(self._view(run))
            self.weights_cache.refresh(run)  # its trainer state is stored and gone
            self.weights_cache.trim()  # the run may be idle now
            if worker.done is not None and not worker.done.done():
                worker.done.set_result(None)
            self._on_slot_free()  # sweeps: the oldest queued run takes the slot

    def _outcome(
        self,
        run: Run,
        worker: Worker,
        final: dict[str, Any] | None,
        broken: str | None,
        exitcode: int | None,
    ) -> tuple[RunStatus, str | None]:
        if final is None:
            if worker.shutting_down:
                return RunStatus.interrupted, "the server stopped while this run was training"
            if broken:
                return RunStatus.failed, f"lost contact with the worker process ({broken})"
            return (
                RunStatus.failed,
                f"the worker process died unexpectedly ({exit_text(exitcode)})",
            )
        reason = final["reason"]
        if reason == "error":
            return RunStatus.failed, final.get("message") or "training failed"
        if reason == "diverged":
            return RunStatus.diverged, final.get("message")
        if reason == "shutdown":
            return RunStatus.interrupted, "the server stopped while this run was training"
        if reason in ("target_loss", "early_stopped"):  # the training controls' ends
            return RunStatus.completed, final.get("message")
        if run.epoch >= run.config["epochs"]:
            return RunStatus.completed, None
        return RunStatus.stopped, None

    async def _finish(
        self, run: Run, final: dict[str, Any] | None, status: RunStatus, message: str | None
    ) -> None:
        """Store the run's end (pending metrics, final checkpoint, status), then show it:
        a status anyone can read is already durable."""
        if run.epoch > run.config["epochs"]:
            run.config["epochs"] = run.epoch  # epochs was lowered below a fast worker's epoch
        updated_at = utcnow()
        fields: dict[str, Any] = {
            "status": str(status),
            "message": message,
            "config": stored_config(run),
            "updated_at": updated_at.isoformat(),
        }
        state = run.state if final is not None and final.get("state") is not None else None
        if final is None and status == RunStatus.interrupted:
            # Killed during shutdown: like a crash, fall back to the last stored checkpoint.
            run.pending, run.pending_snapshots = [], []
            epoch = await self._db(self._rewind_stored, run, fields)
            run.state, run.params = None, None
            run.status, run.message, run.updated_at = status, message, updated_at
            self._rewind(run, epoch)
            return
        fields.update(epoch=run.epoch, last_metrics=run.last)
        metrics, run.pending = run.pending, []
        snapshots, run.pending_snapshots = run.pending_snapshots, []
        await self._db(self._commit_progress, run, metrics, state, fields, snapshots)
        run.status, run.message, run.updated_at = status, message, updated_at
        run.state = None  # stored now; a big net's optimizer state need not stay in memory


# ---- helpers --------------------------------------------------------------------------


def _task_count() -> int:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # called outside the event loop thread
        return -1


def _log_write_error(future: Any) -> None:
    exc = future.exception()
    if exc is not None:
        level = logging.ERROR if not isinstance(exc, StorageError) else logging.WARNING
        log.log(level, "storing training progress failed: %s", exc)

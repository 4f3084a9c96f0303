"""The read side of `RunManager`: every query of the runs layer, none of which changes a
run. `RunQueries` holds the registry, the store, the writer (reads that must follow
earlier writes) and the job limiter; `RunManager` extends it with the commands.
Heavy reads (weights, data, predictions of big nets) are bounded jobs off the loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import asdict
from typing import Any

import numpy as np

from app.nn.datasets import dataset_to_json, make_dataset, teacher_network
from app.runs import reads
from app.runs.broadcast import MetricsHistory, RunHub, layers_public
from app.runs.exports import ExportSource
from app.runs.jobs import JobLimiter
from app.runs.models import MAX_EPOCHS, ProblemError, RunView
from app.runs.processes import pid_of
from app.runs.record import Run, network_of
from app.runs.registry import RunRegistry
from app.runs.step_inspector import StepInputs, inspect_step
from app.runs.weights_cache import WeightsCache
from app.runs.worker import dataset_spec
from app.runs.writer import StoreWriter
from app.storage.store import Store


class RunQueries:
    """See INTERNALS.md `app.runs`; every method raises ProblemError for 404/422."""

    def __init__(self, store: Store, registry: RunRegistry, writer: StoreWriter) -> None:
        self.store = store
        self.registry = registry
        self.writer = writer
        self.weights_cache: WeightsCache = registry.weights_cache
        self.jobs = JobLimiter()

    def list_runs(self) -> list[RunView]:
        """Every run, newest first."""
        self.registry.adopt_stored_runs()
        if self.registry.remote is not None:  # Ray: other servers change runs too
            self.registry.remote.refresh_all()
        return [self.registry.view(r) for r in reversed(self.registry.runs.values())]

    def get(self, run_id: str) -> RunView:
        return self.registry.view(self.registry.get(run_id))

    def hub(self, run_id: str) -> RunHub:
        return self.registry.hub(self.registry.get(run_id))

    def metrics(self, run_id: str, since: int = 0) -> dict[str, list[Any]]:
        """API.md columnar metrics of epochs > since, plus `grad_norms` (per epoch, per layer)."""
        run = self.registry.get(run_id)
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
        run = self.registry.get(run_id)
        if epoch is None:
            params, at = self.registry.params(run)
        else:
            at, params = self._kept(run, epoch)
        weights, biases = self.registry.views(run, params)
        return {"epoch": at, "layers": layers_public(weights, biases)}

    def snapshots(self, run_id: str) -> dict[str, list[int]]:
        """The epochs whose weights are kept (API.md v1.1 "Weight history"), ascending."""
        run = self.registry.get(run_id)
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

    def _custom(self, run: Run) -> dict[str, np.ndarray] | None:
        """A custom dataset's x/y, read on this thread (None for the others)."""
        if not run.config.is_custom:
            return None
        return self.store.load_custom(run.id)

    def data(self, run_id: str) -> dict[str, Any]:
        """{"train": {"x", "y"}, "test": {...}}, y in the form `custom` takes it."""
        run = self.registry.get(run_id)
        return dataset_to_json(make_dataset(dataset_spec(run.config, self._custom(run))))

    async def weights_json(self, run_id: str, epoch: int | None = None) -> list[bytes]:
        """`weights(run_id, epoch)` as JSON, in pieces that join to the whole text (a big
        net's is ~100 MB: sent piece by piece), encoded off the event loop (a job); the
        current weights are read off the loop too (a kept snapshot is read on it)."""
        run = self.registry.get(run_id)
        if epoch is None:
            params, at = await self.registry.load_params(run)
        else:
            at, params = self._kept(run, epoch)
        weights, biases = self.registry.views(run, params)
        return await self.jobs.run(reads.weights_parts, at, weights, biases)

    async def data_json(self, run_id: str) -> bytes:
        """`data()` as JSON bytes, built and encoded off the event loop (a job)."""
        run = self.registry.get(run_id)
        custom = None
        if run.config.is_custom:
            custom = await self.jobs.run(self.store.load_custom, run.id)
        spec = dataset_spec(run.config, custom)
        return await self.jobs.run(lambda: reads.encode_data(make_dataset(spec)))

    def predict(self, run_id: str, inputs: Any) -> dict[str, Any]:
        """Outputs (n, n_out) of the latest weights for inputs (n, n_in), on the caller's
        thread (the API uses `predict_json`)."""
        run = self.registry.get(run_id)
        x = reads.checked_inputs(inputs, self.registry.view(run).n_inputs)
        params, _ = self.registry.params(run)
        return reads.predict(network_of(run), params, x, run.config.features, run.task)

    async def predict_json(self, run_id: str, inputs: Any) -> bytes:
        """`predict()` as JSON bytes, computed off the event loop (a job)."""
        run = self.registry.get(run_id)
        x = reads.checked_inputs(inputs, self.registry.view(run).n_inputs)
        params, _ = await self.registry.load_params(run)
        net, features = network_of(run), run.config.features
        return await self.jobs.run(reads.predict_json, net, params, x, features, run.task)

    async def inspect(
        self, run_id: str, batch: int = 0, sample: int = 0, *, limit: int = 64, check: bool = True
    ) -> dict[str, Any]:
        """One plain-SGD step's numbers on batch ``batch`` of the unshuffled training set
        (see `app.runs.step_inspector.inspect_step`), from one snapshot of the weights taken at
        the call (also while training), computed off the event loop as a job. ``check=False``
        leaves `gradient_check` empty (it costs a few forward passes of the batch per layer)."""
        # Read off the loop; step_inputs finds them.
        await self.registry.load_params(self.registry.get(run_id))
        inputs = self.step_inputs(run_id)
        return await self.jobs.run(inspect_step, inputs, batch, sample, limit, check)

    def step_inputs(self, run_id: str) -> StepInputs:
        """The inspector's inputs: one snapshot of the run's weights (never mutated), its
        config and custom data (`app.runs.inspecting` applies a step with it)."""
        run = self.registry.get(run_id)
        params, epoch = self.registry.params(run)  # never mutated: a consistent snapshot
        config = run.config
        custom = self._custom(run)
        net = network_of(run)
        net.params[...] = params
        weights, biases = self.registry.views(run, params)
        return StepInputs(net, weights, biases, config, custom, run.task, epoch)

    def export_source(self, run_id: str) -> ExportSource:
        """(export) The latest weights as arrays, config and custom points, for export.npz."""
        run = self.registry.get(run_id)
        params, epoch = self.registry.params(run)  # never mutated: a consistent snapshot
        weights, biases = self.registry.views(run, params)
        custom = self._custom(run)
        config = run.config.public()
        return ExportSource(config, list(run.layer_sizes), weights, biases, epoch, custom)

    def teacher(self, run_id: str) -> dict[str, Any]:
        """The teacher network of a `teacher` run (API.md v1.1): layers and activation."""
        run = self.registry.get(run_id)
        spec = run.config.dataset
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

    def diagnostics(self) -> dict[str, Any]:
        """Counts for leak checks: subscribers, tasks, threads, workers, open fds."""
        try:
            fds = len(os.listdir("/proc/self/fd"))
        except OSError:
            fds = -1
        runs = self.registry.runs.values()
        # A worker counts until its run's end is stored (it holds its slot that long).
        workers = {r.id: pid_of(r.worker) for r in runs if r.worker is not None}
        return {
            "runs": len(self.registry.runs),
            "running": len(workers),
            "workers": workers,
            "subscribers": sum(r.hub.subscribers for r in runs if r.hub),
            "hubs": sum(1 for r in runs if r.hub is not None),
            "tasks": _task_count(),
            "threads": threading.active_count(),
            "fds": fds,
            "weights_cache": asdict(self.weights_cache.stats()),
            "jobs": asdict(self.jobs.stats()),
        }


def _task_count() -> int:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # called outside the event loop thread
        return -1

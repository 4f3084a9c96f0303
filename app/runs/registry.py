"""The registry: every run's in-memory record (`record.Run`), by id, on the event loop.

It finds a run (`get`, picking up runs another process stored), shows it (`view`,
`hub`), and holds its latest weights: an immutable flat snapshot, loaded on demand
from the store and dropped by the weights cache when the run is idle (`params`,
`load_params`, `set_params`). It changes no stored state but one: at start-up, a run
left `running` by a process that no longer trains it becomes `interrupted`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from app.nn.network import param_views
from app.runs.broadcast import LayersLoader, RunHub
from app.runs.leases import Owner, lease_is_live
from app.runs.models import ProblemError, RunStatus, RunView
from app.runs.record import (
    METRIC_KEYS,
    Run,
    initial_params,
    last_metrics_of,
    run_from_row,
    utcnow,
)
from app.runs.weights_cache import WeightsCache
from app.runs.writer import StoreWriter
from app.storage.store import Store


class RunRegistry:
    def __init__(
        self, store: Store, writer: StoreWriter, owner: Owner, weights_budget_bytes: int
    ) -> None:
        self.store = store
        self.writer = writer
        self.owner = owner
        self.runs: dict[str, Run] = {}
        # With the Ray executor: how runs trained by other servers are served here
        # (cluster.py); None with local worker processes.
        self.remote: Any = None
        # Ray: whether a run's actor is alive on the cluster (a `running` row whose lease
        # lapsed is then adopted, not `interrupted`).
        self.on_cluster: Callable[[str], bool] | None = None
        # Idle runs' weights within a byte budget (weights_cache.py).
        self.weights_cache = WeightsCache(weights_budget_bytes, self.release_weights)

    # ---- finding runs ---------------------------------------------------------------

    def get(self, run_id: str) -> Run:
        """The run's record; ProblemError(404) when there is none."""
        run = self.runs.get(run_id)
        if run is None:
            self.adopt_stored_runs()
            run = self.runs.get(run_id)
        if run is None:
            raise ProblemError(404, f"no run with id {run_id!r}")
        if self.remote is not None:
            self.remote.refresh(run)
        return run

    def forget(self, run: Run) -> None:
        """The run is gone (deleted here, or through another server): its streams end."""
        run.deleted = True
        self.runs.pop(run.id, None)
        self.weights_cache.forget(run)
        if run.hub is not None:
            run.hub.close()

    @staticmethod
    def check_alive(run: Run) -> None:
        if run.deleted:
            raise ProblemError(404, f"no run with id {run.id!r}")

    def running(self, cluster_wide: bool = False) -> int:
        """Runs with a worker (each holds a training slot until its end is stored); with
        `cluster_wide` (Ray), every server's: the store's `running` runs, plus this
        server's runs whose trainer is starting (not yet stored `running`)."""
        mine = sum(1 for r in self.runs.values() if r.worker is not None)
        if not cluster_wide:
            return mine
        starting = sum(
            1 for r in self.runs.values() if r.worker is not None and r.status != RunStatus.running
        )
        return max(mine, self.store.count_running() + starting)

    def adopt_stored_runs(self, startup: bool = False) -> None:
        """Pick up the runs of our database that this process does not hold yet: at
        start-up all of them, later those another process (`backprop-live train`)
        stored. A run still training elsewhere, under a live lease, is left until it
        ends; one whose trainer is gone (its lease lapsed) comes back `interrupted`."""
        if not startup and self.store.count_runs() <= len(self.runs):
            return
        for row in self.store.load_runs():
            if row["id"] in self.runs:
                continue
            if row["status"] == RunStatus.running:
                if self.remote is not None:  # Ray: trained on the cluster, served here too
                    if self._leased_elsewhere(row["id"]) or self._on_cluster(row["id"]):
                        self.runs[row["id"]] = run = run_from_row(row)
                        self.remote.check(run)  # adopted if its holder is gone
                        continue
                elif self._leased_elsewhere(row["id"]):
                    continue
                self.recover(row)
            self.runs[row["id"]] = run_from_row(row)

    def _leased_elsewhere(self, run_id: str) -> bool:
        lease = self.store.lease(run_id)
        return lease is not None and lease_is_live(*lease, self.owner)

    def _on_cluster(self, run_id: str) -> bool:
        return self.on_cluster is not None and self.on_cluster(run_id)

    def recover(self, row: dict[str, Any]) -> None:
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

    # ---- showing runs ---------------------------------------------------------------

    def view(self, run: Run) -> RunView:
        return RunView(
            id=run.id,
            name=run.config.name,
            status=run.status,
            message=run.message,
            config=run.config.public(),
            layer_sizes=run.layer_sizes,
            task=run.task,
            n_params=run.n_params,
            epoch=run.epoch,
            created_at=run.created_at,
            updated_at=run.updated_at,
            **{k: run.last.get(k) for k in METRIC_KEYS},
        )

    def hub(self, run: Run) -> RunHub:
        """The run's live hub, made (with its stored metrics) on first use."""
        if run.hub is None:
            hub = RunHub(self.view(run), self._layers_loader(run))
            hub.history.extend(self.store.load_metrics(run.id))
            hub.history.extend(run.pending)
            run.hub = hub
        if self.remote is not None:
            self.remote.follow(run)  # trained by another server: pull its frames here
        return run.hub

    def show(self, run: Run) -> None:
        """The run's record changed: its hub (if any) shows the new view."""
        if run.hub is not None:
            run.hub.set_view(self.view(run))

    # ---- weights --------------------------------------------------------------------

    def params(self, run: Run) -> tuple[np.ndarray, int]:
        """The latest weights snapshot (flat) and its epoch, loading it on this thread
        when the run holds none (`load_params` loads it off the loop)."""
        loaded = run.params is None
        if loaded:
            run.params, run.params_epoch = self._read_params(run)
        self.weights_cache.touch(run, loaded=loaded)
        return run.params, run.params_epoch

    async def load_params(self, run: Run) -> tuple[np.ndarray, int]:
        """`params`, with the read (a big checkpoint takes a while) in the writer
        thread: after every write queued before it, off the event loop."""
        if run.params is None:
            generation = run.params_generation
            params, epoch = await self.writer.call(self._read_params, run)
            # Unless newer weights came (and went) meanwhile, these are the latest.
            if run.params is None and run.params_generation == generation:
                run.params, run.params_epoch = params, epoch
                self.weights_cache.touch(run, loaded=True)
        return self.params(run)

    def _read_params(self, run: Run) -> tuple[np.ndarray, int]:
        """The stored checkpoint's weights (the optimizer's arrays stay on disk), or the
        creation weights without one."""
        stored = self.store.load_params(run.id)
        if stored is None:
            return initial_params(run), 0
        return stored[1], stored[0]

    def set_params(self, run: Run, params: np.ndarray, epoch: int) -> None:
        """New weights for `run` (a frame, a reset, an edit): held, and counted."""
        run.params, run.params_epoch = params, epoch
        run.params_generation += 1
        self.weights_cache.touch(run)

    def release_weights(self, run: Run) -> None:
        """The weights cache drops an idle run's weights: they load again on next use."""
        run.params, run.state = None, None
        if run.hub is not None:
            run.hub.release_layers(self._layers_loader(run))

    def _layers_loader(self, run: Run) -> LayersLoader:
        def load_layers() -> tuple[list[np.ndarray], list[np.ndarray] | None, int]:
            params, epoch = self.params(run)
            weights, biases = self.views(run, params)
            return weights, biases, epoch

        return load_layers

    @staticmethod
    def views(run: Run, params: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """Per-layer weight and bias views of a flat `params` of `run`'s layout."""
        return param_views(params, run.layer_sizes, bool(run.config.use_bias))

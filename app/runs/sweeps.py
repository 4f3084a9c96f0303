"""Sweeps (API.md v1.1 "Sweeps and the `queued` status"): one run per grid combination,
and the queue of runs waiting for a training slot.

`SweepQueue` is a mixin of `RunManager` (it uses the manager's registry, writer and
supervisor): a sweep's runs are stored at once, all `queued`, then `_drain_queue` starts
the oldest queued runs while slots are free. The supervisor calls `_on_slot_free()` whenever
a worker ends, `_queue_if_no_slot` from `start`, and `_load_sweeps` at start-up.
The grid itself (the combinations, their names, their validation) is plain functions.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.runs.errors import ProblemError
from app.runs.messages import problem_from_validation
from app.runs.models import RunCreate, RunStatus, RunView
from app.runs.record import Run, initial_checkpoint, prepare_run, stored_row, utcnow
from app.storage.errors import StorageError

if TYPE_CHECKING:
    from app.runs.manager import RunManager

log = logging.getLogger(__name__)

MAX_SWEEP_RUNS = 64
# The grid's fields: top-level run fields; a run's name comes from its grid values.
GRID_FIELDS = frozenset(RunCreate.model_fields) - {"start", "name"}


class SweepCreate(BaseModel):
    """Body of `POST /api/sweeps`."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=80)
    base: dict[str, Any] = Field(default_factory=dict, description="POST /api/runs fields")
    grid: dict[str, list[Any]] = Field(
        default_factory=dict, description="field -> the values it takes, one run per combination"
    )


@dataclass
class Sweep:
    id: str
    name: str
    grid: dict[str, list[Any]]
    base: dict[str, Any]
    run_ids: list[str]  # grid order
    created_at: datetime


@dataclass(frozen=True)
class SweepView:
    """An immutable picture of a sweep; `public()` is the API's Sweep object."""

    id: str
    name: str
    grid: dict[str, list[Any]]
    base: dict[str, Any]
    runs: list[RunView]
    created_at: datetime

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "grid": json.loads(json.dumps(self.grid)),
            "base": json.loads(json.dumps(self.base)),
            "runs": [run.public() for run in self.runs],
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
        }


# ---- the grid ---------------------------------------------------------------------------


def grid_value_text(value: Any) -> str:
    """A grid value as a run's name shows it: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def combinations(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the last field varying fastest; an empty
    grid is one combination (the base alone)."""
    fields = list(grid)
    return [dict(zip(fields, values, strict=True)) for values in itertools.product(*grid.values())]


def combination_name(combo: dict[str, Any], fallback: str) -> str:
    """ "lr=0.1, hidden_layers=[8, 8]" (at most 80 characters)."""
    text = ", ".join(f"{k}={grid_value_text(v)}" for k, v in combo.items()) or fallback
    return text if len(text) <= 80 else text[:79] + "…"


def run_bodies(body: SweepCreate) -> list[RunCreate]:
    """The sweep's run requests in grid order, every one validated before any is made:
    a bad value anywhere is a 422 naming the field (`grid.<field>` or `base.<field>`)."""
    if "start" in body.base:
        raise ProblemError(422, "base.start: a sweep starts its runs itself", "base.start")
    for field, values in body.grid.items():
        if field not in GRID_FIELDS:
            raise ProblemError(
                422, f"grid.{field}: not a run field a sweep can vary", f"grid.{field}"
            )
        if not values:
            raise ProblemError(422, f"grid.{field}: give at least one value", f"grid.{field}")
    count = 1
    for values in body.grid.values():
        count *= len(values)
    if count > MAX_SWEEP_RUNS:
        raise ProblemError(
            422, f"grid: {count} combinations; a sweep has at most {MAX_SWEEP_RUNS} runs", "grid"
        )
    fallback = body.name or body.base.get("name") or "sweep run"
    bodies = []
    for combo in combinations(body.grid):
        fields = {**body.base, **combo, "name": combination_name(combo, fallback), "start": False}
        try:
            bodies.append(RunCreate.model_validate(fields))
        except ValidationError as exc:
            raise _blamed(problem_from_validation(exc), combo) from None
    return bodies


def _blamed(problem: ProblemError, combo: dict[str, Any]) -> ProblemError:
    """The error of one combination, its field named as the sweep's body has it."""
    field = problem.field or ""
    top = field.split(".")[0]
    where = "grid" if top in combo else "base"
    named = f"{where}.{field}" if field else where
    values = ", ".join(f"{k}={grid_value_text(v)}" for k, v in combo.items())
    place = "in the grid" if where == "grid" else "in base"
    context = f" ({place}, with {values})" if values else f" ({place})"
    return ProblemError(422, f"{problem.detail}{context}", named)


def prepare_all(
    bodies: list[RunCreate], grid_values: dict[str, dict[str, Any]]
) -> list[tuple[Run, Any]]:
    """`prepare_run` for each (builds datasets: run it in a thread); `grid_values` by run
    name, to name the field at fault."""
    prepared = []
    for body in bodies:
        try:
            prepared.append(prepare_run(body))
        except ProblemError as exc:
            raise _blamed(exc, grid_values.get(body.name or "", {})) from None
    return prepared


class _Tickets:
    """Queue tickets: nanoseconds since the epoch, strictly increasing (order survives a
    restart)."""

    def __init__(self) -> None:
        self.last = 0

    def next(self) -> int:
        self.last = max(self.last + 1, time.time_ns())
        return self.last


# ---- the manager's part -----------------------------------------------------------------


class SweepQueue:
    """RunManager's sweeps and queue (a mixin: `self` is the RunManager)."""

    def _init_sweeps(self: RunManager) -> None:
        self._sweeps: dict[str, Sweep] = {}
        self._tickets = _Tickets()
        self._queue_lock = asyncio.Lock()

    # ---- queries --------------------------------------------------------------------

    def list_sweeps(self: RunManager) -> list[SweepView]:
        """Every sweep, newest first."""
        return [self._sweep_view(s) for s in reversed(self._sweeps.values())]

    def get_sweep(self: RunManager, sweep_id: str) -> SweepView:
        return self._sweep_view(self._get_sweep(sweep_id))

    def _get_sweep(self: RunManager, sweep_id: str) -> Sweep:
        sweep = self._sweeps.get(sweep_id)
        if sweep is None:
            raise ProblemError(404, f"no sweep with id {sweep_id!r}")
        return sweep

    def _sweep_view(self: RunManager, sweep: Sweep) -> SweepView:
        runs = [
            self.registry.view(self.registry.runs[i])
            for i in sweep.run_ids
            if i in self.registry.runs
        ]
        return SweepView(sweep.id, sweep.name, sweep.grid, sweep.base, runs, sweep.created_at)

    # ---- commands -------------------------------------------------------------------

    async def create_sweep(self: RunManager, body: SweepCreate) -> SweepView:
        """Validate every combination, store the sweep and all its runs `queued` at once,
        then start as many as there are free slots."""
        self.supervisor.check_not_closing()
        bodies = run_bodies(body)
        room = self.settings.max_stored_runs - len(self.registry.runs) - self._creating
        if len(bodies) > room:
            raise ProblemError(
                409,
                f"a sweep of {len(bodies)} runs does not fit: the limit is "
                f"{self.settings.max_stored_runs} stored runs; delete some first",
            )
        self._creating += len(bodies)  # taken before the first await, like `create`
        try:
            by_name = {combination_name(c, ""): c for c in combinations(body.grid)}
            prepared = await asyncio.to_thread(prepare_all, bodies, by_name)
            sweep = Sweep(
                id=uuid.uuid4().hex[:12],
                name=body.name or _default_name(body.grid),
                grid=body.grid,
                base=body.base,
                run_ids=[run.id for run, _ in prepared],
                created_at=utcnow(),
            )
            rows = []
            for run, custom in prepared:
                run.status, run.sweep_id = RunStatus.queued, sweep.id
                run.queued_at = self._tickets.next()
                rows.append((stored_row(run), custom, initial_checkpoint(run), run.queued_at))
            record = {
                "id": sweep.id,
                "name": sweep.name,
                "grid": sweep.grid,
                "base": sweep.base,
                "created_at": sweep.created_at.isoformat(),
            }
            await self.writer.call(self.store.insert_sweep, record, rows)
            for run, _ in prepared:
                self.registry.runs[run.id] = run
                self.weights_cache.touch(run)  # its creation weights; the store has them too
            self._sweeps[sweep.id] = sweep
        finally:
            self._creating -= len(bodies)
        await self._drain_queue()
        return self._sweep_view(sweep)

    async def stop_sweep(self: RunManager, sweep_id: str) -> SweepView:
        """Stop its queued runs (first, so none starts meanwhile), then its running ones."""
        sweep = self._get_sweep(sweep_id)
        runs = [self.registry.runs[i] for i in sweep.run_ids if i in self.registry.runs]
        for run in runs:
            if run.status == RunStatus.queued:
                await self.stop(run.id)
        await asyncio.gather(*(self.stop(r.id) for r in runs if r.worker is not None))
        return self._sweep_view(sweep)

    async def delete_sweep(self: RunManager, sweep_id: str) -> None:
        """Stop it, then delete it and its runs (their streams end)."""
        await self.stop_sweep(sweep_id)
        sweep = self._get_sweep(sweep_id)
        await self.writer.call(self.store.delete_sweep, sweep.id)
        self._sweeps.pop(sweep.id, None)
        for run_id in sweep.run_ids:
            run = self.registry.runs.pop(run_id, None)
            if run is not None:
                run.deleted = True
                if run.hub is not None:
                    run.hub.close()

    # ---- the queue ------------------------------------------------------------------

    def _slot_free(self: RunManager) -> bool:
        return self.registry.running() < self.settings.max_running_runs

    async def _enqueue(self: RunManager, run: Run, ticket: int | None = None) -> None:
        """`run` (of a sweep; caller holds its lock) waits for a slot: status `queued`."""
        run.queued_at = self._tickets.next() if ticket is None else ticket
        run.status, run.message, run.updated_at = RunStatus.queued, None, utcnow()
        fields = {"status": str(run.status), "message": None}
        await self.writer.call(
            self.store.queue_run,
            run.id,
            run.queued_at,
            **fields,
            updated_at=run.updated_at.isoformat(),
        )
        self.registry.show(run)

    async def _queue_if_no_slot(self: RunManager, run: Run) -> bool:
        """From `start` (lock held): a sweep's run with no free slot is queued (True)."""
        if run.sweep_id is None or self._slot_free():
            return False
        await self._enqueue(run)
        return True

    def _on_slot_free(self: RunManager) -> None:
        """A worker ended: start the oldest queued run (in a task)."""
        if not self._closing and any(
            r.status == RunStatus.queued for r in self.registry.runs.values()
        ):
            self._spawn(self._drain_queue(), "sweep-queue")

    def _oldest_queued(self: RunManager) -> Run | None:
        queued = [r for r in self.registry.runs.values() if r.status == RunStatus.queued]
        return min(queued, key=lambda r: r.queued_at or 0, default=None)

    async def _drain_queue(self: RunManager) -> None:
        """Start queued runs, oldest first, while a slot is free (one drainer at a time;
        `supervisor.launch` takes the slot with no await after its last capacity check)."""
        async with self._queue_lock:
            while not self._closing and self._slot_free():
                run = self._oldest_queued()
                if run is None:
                    return
                async with run.lock:
                    if run.deleted or run.status != RunStatus.queued:
                        continue
                    if not await self._start_queued(run):
                        return

    async def _start_queued(self: RunManager, run: Run) -> bool:
        """Launch one queued run (lock held); False when the queue should wait."""
        if run.epoch >= run.config.epochs:
            await self._set_status(run, RunStatus.completed, None)
            return True
        try:
            await self.supervisor.launch(run, target=run.config.epochs)
        except ProblemError as exc:
            if self._closing or not self._slot_free():
                return False  # the slot was taken meanwhile (or we are closing): wait
            await self._set_status(run, RunStatus.stopped, exc.detail)
        except StorageError as exc:
            log.warning("starting queued run %s failed: %s", run.id, exc)
            return False
        return True

    async def _load_sweeps(self: RunManager) -> None:
        """At start-up: the sweeps, their runs' links and tickets; a sweep's run the
        stop interrupted is queued again, ahead of the others (it resumes from its
        checkpoint); then the queue starts."""
        rows = await self.writer.call(self.store.load_sweeps)
        links = await self.writer.call(self.store.sweep_links)
        for row in rows:
            self._sweeps[row["id"]] = Sweep(
                row["id"],
                row["name"],
                row["grid"],
                row["base"],
                row["run_ids"],
                datetime.fromisoformat(row["created_at"]),
            )
        for run_id, (sweep_id, ticket) in links.items():
            run = self.registry.runs.get(run_id)
            if run is not None:
                run.sweep_id, run.queued_at = sweep_id, ticket
                self._tickets.last = max(self._tickets.last, ticket or 0)
        interrupted = [
            self.registry.runs[run_id]
            for sweep in self._sweeps.values()
            for run_id in sweep.run_ids
            if run_id in self.registry.runs
            and self.registry.runs[run_id].status == RunStatus.interrupted
        ]
        tickets = [r.queued_at for r in self.registry.runs.values() if r.status == RunStatus.queued]
        first = min((t for t in tickets if t is not None), default=time.time_ns())
        for i, run in enumerate(interrupted):  # ahead of those queued before, in grid order
            async with run.lock:
                await self._enqueue(run, first - len(interrupted) + i)
        self._on_slot_free()


def _default_name(grid: dict[str, list[Any]]) -> str:
    return ("sweep of " + ", ".join(grid))[:80] if grid else "sweep"

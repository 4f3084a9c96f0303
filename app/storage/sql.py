"""The SQL of the `Store` protocol, once, for SQLite and PostgreSQL (see `sql_base`
for what a backend gives and for the dialect both databases speak)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from app.nn.metrics import EpochMetrics
from app.storage.errors import StorageError
from app.storage.protocol import CustomData, SweepRun
from app.storage.records import (
    INITIAL_META,
    METRIC_COLUMNS,
    METRIC_SLICE,
    Checkpoint,
    Snapshot,
    pack_arrays,
    unpack_arrays,
    unpack_params,
)
from app.storage.sql_base import (
    RUN_COLUMNS,
    RUN_TABLES,
    UPSERT_CHECKPOINT,
    UPSERT_METRIC,
    UPSERT_SNAPSHOT,
    Cursor,
    SqlBase,
    Tx,
    metric_values,
    run_row,
)

__all__ = ["Cursor", "SqlStore", "Tx"]


class SqlStore(SqlBase):
    """Everything of the `Store` protocol, above a backend's connections."""

    def insert_run(
        self,
        run: Mapping[str, Any],
        custom: CustomData | None = None,
        initial: Checkpoint | None = None,
    ) -> None:
        """Insert a run row (keys: id, name, config dict, status, message, epoch,
        last_metrics dict|None, created_at, updated_at), its custom data and the weights
        it starts from instead of its initialiser's (`initial`, also its first
        checkpoint), atomically."""
        with self._tx() as db:
            self._insert_run(db, run, custom, initial)

    def load_initial(self, run_id: str) -> np.ndarray | None:
        """The weights a run starts from instead of its initialiser's (flat), or None."""
        rows = self._read("SELECT arrays FROM initial_weights WHERE run_id = ?", (run_id,))
        return unpack_arrays(rows[0][0])["params"] if rows else None

    def count_runs(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM runs")[0][0])

    def count_running(self) -> int:
        """Runs whose stored status is `running`, whichever process trains them."""
        return int(self._read("SELECT COUNT(*) FROM runs WHERE status = 'running'")[0][0])

    def claim_running(self, run_id: str, limit: int, **fields: Any) -> int | None:
        """The cluster-wide running-runs limit: count and mark in one transaction, under
        a lock every process takes for it (SQLite: the database's write lock)."""
        with self._tx() as db:
            self._lock_running(db)
            (others,) = db.execute(
                "SELECT COUNT(*) FROM runs WHERE status = 'running' AND id <> ?", (run_id,)
            ).fetchone()
            if int(others) >= limit:
                return int(others)
            self._update_run(db, run_id, {**fields, "status": "running"})
        return None

    def load_runs(self) -> list[dict[str, Any]]:
        """Every run row, oldest first (config and last_metrics decoded)."""
        rows = self._read(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY seq, created_at, id")
        return [run_row(r) for r in rows]

    def load_run(self, run_id: str) -> dict[str, Any] | None:
        """One run row as `load_runs` gives it, or None."""
        rows = self._read(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return run_row(rows[0]) if rows else None

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set any of RUN_FIELDS (config/last_metrics as dicts)."""
        with self._tx() as db:
            self._update_run(db, run_id, fields)

    def delete_run(self, run_id: str) -> None:
        with self._tx() as db:
            self._delete_run(db, run_id)
        self.release_free_pages()

    def copy_run(self, source_id: str, new_id: str, name: str, now: str) -> None:
        """A new run `new_id` with everything of `source_id` (row, metrics, checkpoint,
        custom data) as stored, named `name`, created and updated `now`."""
        with self._tx() as db:
            found = db.execute("SELECT config FROM runs WHERE id = ?", (source_id,)).fetchone()
            if found is None:
                return
            config = {**json.loads(found[0]), "name": name}
            seq = self._next_seq(db, "runs")
            db.execute(
                f"INSERT INTO runs (seq, {RUN_COLUMNS}) SELECT ?, ?, ?, ?, status, message,"
                " epoch, last_metrics, ?, ? FROM runs WHERE id = ?",
                (seq, new_id, name, json.dumps(config), now, now, source_id),
            )
            for table, columns in (
                ("metrics", f"epoch, {', '.join(METRIC_COLUMNS)}, grad_norms, learning_rate"),
                ("checkpoints", "epoch, arrays, meta"),
                ("datasets", "arrays"),
                ("initial_weights", "arrays"),
                ("snapshots", "epoch, params"),
            ):
                db.execute(
                    f"INSERT INTO {table} (run_id, {columns}) SELECT ?, {columns}"
                    f" FROM {table} WHERE run_id = ?",
                    (new_id, source_id),
                )

    def reinitialise(
        self,
        run_id: str,
        run_fields: Mapping[str, Any],
        custom: CustomData | None,
        initial: Checkpoint | None = None,
    ) -> None:
        """A structural change: drop metrics and checkpoint, replace the custom data and
        starting weights (None: none) and update the run row, in one transaction."""
        with self._tx() as db:
            for table in RUN_TABLES:
                db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            self._put_data(db, run_id, custom, initial)
            self._update_run(db, run_id, run_fields)
        self.release_free_pages()

    def load_custom(self, run_id: str) -> dict[str, np.ndarray] | None:
        rows = self._read("SELECT arrays FROM datasets WHERE run_id = ?", (run_id,))
        return unpack_arrays(rows[0][0]) if rows else None

    # ---- leases (app.runs.leases says what they mean) ----------------------------------

    def lease(self, run_id: str) -> tuple[str, float] | None:
        """(owner, expires_at) of the run's lease, or None."""
        rows = self._read("SELECT owner, expires_at FROM leases WHERE run_id = ?", (run_id,))
        return (str(rows[0][0]), float(rows[0][1])) if rows else None

    def take_lease(
        self, run_id: str, owner: str, expires_at: float, is_live: Callable[[str, float], bool]
    ) -> str | None:
        """Take (or renew) the run's lease unless `is_live(holder, expiry)` says another
        owner still holds it; returns that owner, or None when the lease is ours now.

        Atomic across processes: a new lease is an insert that does nothing when a row
        exists (PostgreSQL waits for a racing insert to commit first); an existing one
        is read under a row lock (SQLite: the transaction locks the database)."""
        with self._tx() as db:
            for _ in range(3):  # the row may be released between the two statements
                inserted = db.execute(
                    "INSERT INTO leases (run_id, owner, expires_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (run_id) DO NOTHING",
                    (run_id, owner, float(expires_at)),
                ).rowcount
                if inserted == 1:
                    return None
                row = db.execute(
                    "SELECT owner, expires_at FROM leases WHERE run_id = ?" + self.FOR_UPDATE,
                    (run_id,),
                ).fetchone()
                if row is None:
                    continue
                if is_live(str(row[0]), float(row[1])):
                    return str(row[0])
                db.execute(
                    "UPDATE leases SET owner = ?, expires_at = ? WHERE run_id = ?",
                    (owner, float(expires_at), run_id),
                )
                return None
        raise StorageError(f"the lease of run {run_id} kept changing hands; try again")

    def renew_leases(self, owner: str, expires_at: float) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE leases SET expires_at = ? WHERE owner = ?", (float(expires_at), owner)
            )

    def release_lease(self, run_id: str, owner: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE run_id = ? AND owner = ?", (run_id, owner))

    # ---- training progress --------------------------------------------------------------

    def commit_progress(
        self,
        run_id: str,
        metrics: Sequence[EpochMetrics] = (),
        checkpoint: Checkpoint | None = None,
        run_fields: Mapping[str, Any] | None = None,
        snapshots: Sequence[Snapshot] = (),
    ) -> None:
        """Append metrics and weight snapshots, replace the checkpoint and update the run
        row in one transaction."""
        blob = pack_arrays(checkpoint.arrays) if checkpoint is not None else None
        with self._tx() as db:
            # A checkpoint of a fast run carries thousands of rows, and binding them holds
            # the GIL that the server's event loop needs: insert them in slices, and let
            # the loop in between (time.sleep releases the GIL).
            for start in range(0, len(metrics), METRIC_SLICE):
                if start:
                    time.sleep(0)
                db.executemany(
                    UPSERT_METRIC,
                    [metric_values(run_id, m) for m in metrics[start : start + METRIC_SLICE]],
                )
            if checkpoint is not None:
                db.execute(
                    UPSERT_CHECKPOINT,
                    (run_id, int(checkpoint.epoch), blob, json.dumps(checkpoint.meta)),
                )
            if snapshots:
                db.executemany(
                    UPSERT_SNAPSHOT,
                    [(run_id, int(e), pack_arrays({"params": p})) for e, p in snapshots],
                )
            if run_fields:
                self._update_run(db, run_id, run_fields)

    def snapshot_epochs(self, run_id: str) -> list[int]:
        rows = self._read("SELECT epoch FROM snapshots WHERE run_id = ? ORDER BY epoch", (run_id,))
        return [int(r[0]) for r in rows]

    def load_snapshot(self, run_id: str, at_most: int) -> Snapshot | None:
        """The kept snapshot with the largest epoch ≤ `at_most`, or None."""
        rows = self._read(
            "SELECT epoch, params FROM snapshots WHERE run_id = ? AND epoch <= ?"
            " ORDER BY epoch DESC LIMIT 1",
            (run_id, min(int(at_most), 2**62)),
        )
        return (int(rows[0][0]), unpack_params(rows[0][1])) if rows else None

    def clear_progress(self, run_id: str, run_fields: Mapping[str, Any] | None = None) -> None:
        """Drop every metric and the checkpoint (reset), updating the run row with it; a
        run with starting weights of its own gets them back as its checkpoint."""
        with self._tx() as db:
            for table in ("metrics", "checkpoints", "snapshots"):
                db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            db.execute(
                "INSERT INTO checkpoints (run_id, epoch, arrays, meta) SELECT run_id, 0, arrays,"
                " ? FROM initial_weights WHERE run_id = ?",
                (json.dumps(INITIAL_META), run_id),
            )
            if run_fields:
                self._update_run(db, run_id, run_fields)
        self.release_free_pages()

    def rewind_to_checkpoint(self, run_id: str, run_fields: Mapping[str, Any]) -> int:
        """Drop metrics after the checkpoint's epoch (0 without one) and point the run
        record (epoch, last_metrics) at it; returns that epoch."""
        with self._tx() as db:
            row = db.execute("SELECT epoch FROM checkpoints WHERE run_id = ?", (run_id,)).fetchone()
            epoch = int(row[0]) if row else 0
            db.execute("DELETE FROM metrics WHERE run_id = ? AND epoch > ?", (run_id, epoch))
            db.execute("DELETE FROM snapshots WHERE run_id = ? AND epoch > ?", (run_id, epoch))
            last = db.execute(
                f"SELECT {', '.join(METRIC_COLUMNS)} FROM metrics WHERE run_id = ? AND epoch = ?",
                (run_id, epoch),
            ).fetchone()
            last_metrics = dict(zip(METRIC_COLUMNS, last, strict=True)) if last else None
            fields = {**run_fields, "epoch": epoch, "last_metrics": last_metrics}
            self._update_run(db, run_id, fields)
            return epoch

    def load_metrics(self, run_id: str, since: int = 0) -> list[EpochMetrics]:
        rows = self._read(
            f"SELECT epoch, {', '.join(METRIC_COLUMNS)}, grad_norms, learning_rate"
            " FROM metrics WHERE run_id = ? AND epoch > ? ORDER BY epoch",
            (run_id, since),
        )
        return [EpochMetrics(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]

    def load_params(self, run_id: str) -> tuple[int, np.ndarray] | None:
        """The checkpoint's epoch and its `params` array alone (the optimizer's arrays in
        the same blob are not decoded), or None without a checkpoint."""
        rows = self._read("SELECT epoch, arrays FROM checkpoints WHERE run_id = ?", (run_id,))
        return (int(rows[0][0]), unpack_params(rows[0][1])) if rows else None

    def load_checkpoint(self, run_id: str) -> Checkpoint | None:
        rows = self._read("SELECT epoch, arrays, meta FROM checkpoints WHERE run_id = ?", (run_id,))
        if not rows:
            return None
        epoch, blob, meta = rows[0]
        return Checkpoint(int(epoch), unpack_arrays(blob), json.loads(meta))

    # ---- sweeps (API.md v1.1 "Sweeps and the `queued` status") --------------------------

    def insert_sweep(self, sweep: Mapping[str, Any], runs: Sequence[SweepRun]) -> None:
        """A sweep (keys: id, name, grid, base, created_at) and its runs (row, custom data
        and starting weights as `insert_run` takes them, queue ticket), in grid order,
        atomically: all of them or nothing."""
        with self._tx() as db:
            seq = self._next_seq(db, "sweeps")
            db.execute(
                "INSERT INTO sweeps (id, seq, name, grid, base, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    sweep["id"],
                    seq,
                    sweep["name"],
                    json.dumps(sweep["grid"]),
                    json.dumps(sweep["base"]),
                    sweep["created_at"],
                ),
            )
            for position, (run, custom, initial, queued_at) in enumerate(runs):
                self._insert_run(db, run, custom, initial)
                db.execute(
                    "INSERT INTO sweep_runs (run_id, sweep_id, position, queued_at)"
                    " VALUES (?, ?, ?, ?)",
                    (run["id"], sweep["id"], position, queued_at),
                )

    def load_sweeps(self) -> list[dict[str, Any]]:
        """Every sweep, oldest first, with `run_ids` in grid order."""
        rows = self._read(
            "SELECT id, name, grid, base, created_at FROM sweeps ORDER BY seq, created_at, id"
        )
        links = self._read("SELECT sweep_id, run_id FROM sweep_runs ORDER BY sweep_id, position")
        run_ids: dict[str, list[str]] = {}
        for sweep_id, run_id in links:
            run_ids.setdefault(sweep_id, []).append(run_id)
        return [
            {
                "id": r[0],
                "name": r[1],
                "grid": json.loads(r[2]),
                "base": json.loads(r[3]),
                "created_at": r[4],
                "run_ids": run_ids.get(r[0], []),
            }
            for r in rows
        ]

    def sweep_links(self) -> dict[str, tuple[str, int | None]]:
        """run id -> (its sweep's id, its queue ticket or None)."""
        rows = self._read("SELECT run_id, sweep_id, queued_at FROM sweep_runs")
        return {r[0]: (r[1], r[2]) for r in rows}

    def queue_run(self, run_id: str, queued_at: int, **fields: Any) -> None:
        """A sweep's run joins the queue: its ticket and its run fields (status), at once."""
        with self._tx() as db:
            db.execute("UPDATE sweep_runs SET queued_at = ? WHERE run_id = ?", (queued_at, run_id))
            self._update_run(db, run_id, fields)

    def delete_sweep(self, sweep_id: str) -> None:
        """A sweep and every run of it, with their data."""
        with self._tx() as db:
            run_ids = db.execute(
                "SELECT run_id FROM sweep_runs WHERE sweep_id = ?", (sweep_id,)
            ).fetchall()
            for (run_id,) in run_ids:
                self._delete_run(db, run_id)
            db.execute("DELETE FROM sweeps WHERE id = ?", (sweep_id,))
        self.release_free_pages()

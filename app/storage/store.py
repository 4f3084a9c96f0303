"""SQLite persistence (stdlib sqlite3, WAL): runs, metrics, checkpoints, custom datasets.

Threading: every thread gets its own connection (WAL lets the event loop read
while the manager's single writer thread commits). The manager does all writes
of a running run (metrics batches, checkpoints) in that writer thread, so a
20 MB checkpoint never stalls the event loop; reads and small status updates
are short transactions that may run on the loop.

Arrays (checkpoints, custom x/y) are stored as one `np.savez` blob, read back
with `allow_pickle=False`; everything else is JSON text. Every sqlite error is
raised as `StorageError` (full disk, read-only file, corruption → API 503).
"""

from __future__ import annotations

import io
import json
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from app.storage import vacuum
from app.storage.errors import StorageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    epoch INTEGER NOT NULL DEFAULT 0,
    last_metrics TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    train_loss REAL,
    test_loss REAL,
    train_accuracy REAL,
    test_accuracy REAL,
    grad_norms TEXT NOT NULL,
    learning_rate REAL,
    PRIMARY KEY (run_id, epoch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT PRIMARY KEY,
    epoch INTEGER NOT NULL,
    arrays BLOB NOT NULL,
    meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    run_id TEXT PRIMARY KEY,
    arrays BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS initial_weights (
    run_id TEXT PRIMARY KEY,
    arrays BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    run_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    params BLOB NOT NULL,
    PRIMARY KEY (run_id, epoch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    run_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL
);
-- sweeps (API.md v1.1): a sweep, and which runs are its own, in grid order; queued_at
-- orders the queue of its runs waiting with status `queued` (oldest first).
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    grid TEXT NOT NULL,
    base TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sweep_runs (
    run_id TEXT PRIMARY KEY,
    sweep_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    queued_at INTEGER
);
"""

RUN_FIELDS = ("name", "config", "status", "message", "epoch", "last_metrics", "updated_at")
METRIC_COLUMNS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")


@dataclass(frozen=True)
class MetricRow:
    """One epoch's metrics; non-finite or missing values are None."""

    epoch: int
    train_loss: float | None
    test_loss: float | None
    train_accuracy: float | None
    test_accuracy: float | None
    grad_norms: list[float | None]
    learning_rate: float | None = None  # the rate the epoch trained with


Snapshot = tuple[int, np.ndarray]  # (epoch, flat weights at its end)


@dataclass(frozen=True)
class Checkpoint:
    """A trainer state at the end of `epoch` (arrays by name, JSON-able meta)."""

    epoch: int
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]


_NUMPY = orjson.OPT_SERIALIZE_NUMPY
# A checkpoint whose meta has this flag holds only weights to start from, no trainer state.
PARAMS_ONLY = "params_only"
INITIAL_META = {PARAMS_ONLY: True}
METRIC_SLICE = 200  # metric rows inserted between two chances for other threads


def finite_or_none(value: float | None) -> float | None:
    """JSON-safe number: NaN/±Inf (and None) become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def pack_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Arrays by name as one .npz blob; object arrays are refused (no pickles, either way)."""
    buffer = io.BytesIO()
    named: dict[str, Any] = {name: np.asarray(a) for name, a in arrays.items()}
    np.savez(buffer, allow_pickle=False, **named)
    return buffer.getvalue()


def unpack_arrays(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


class Store:
    """One SQLite file; safe to use from several threads (one connection each)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) == ":memory:":
            raise StorageError("an in-memory database cannot be shared with workers; use a file")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        try:
            db = self._connection()
            vacuum.prepare(db, self.path)  # before the first table of a new file
            db.executescript(SCHEMA)  # executescript manages its own commit
            _migrate(db)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot initialise database {self.path}: {exc}") from exc

    # ---- connections and transactions -------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StorageError("the store is closed")
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(
                    self.path, timeout=10.0, isolation_level=None, check_same_thread=False
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("PRAGMA foreign_keys=OFF")
            except sqlite3.Error as exc:
                raise StorageError(f"cannot open database {self.path}: {exc}") from exc
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                # SQLite has already rolled back by itself after some errors (SQLITE_FULL):
                # a second ROLLBACK would fail and hide the real error.
                if db.in_transaction:
                    with suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StorageError(f"database error ({self.path.name}): {exc}") from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._connection().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"database error ({self.path.name}): {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for db in self._connections:
                with suppress(sqlite3.Error):
                    db.close()
            self._connections.clear()

    # ---- runs ---------------------------------------------------------------------------

    def insert_run(
        self,
        run: Mapping[str, Any],
        custom: Mapping[str, np.ndarray] | None = None,
        initial: Checkpoint | None = None,
    ) -> None:
        """Insert a run row (keys: id, name, config dict, status, message, epoch,
        last_metrics dict|None, created_at, updated_at), its custom data and the weights
        it starts from instead of its initialiser's (`initial`, also its first
        checkpoint), atomically."""
        with self._tx() as db:
            self._insert_run(db, run, custom, initial)

    @classmethod
    def _insert_run(
        cls,
        db: sqlite3.Connection,
        run: Mapping[str, Any],
        custom: Mapping[str, np.ndarray] | None,
        initial: Checkpoint | None,
    ) -> None:
        """One run row (see `insert_run`) inside the caller's transaction."""
        (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM runs").fetchone()
        db.execute(
            "INSERT INTO runs (id, seq, name, config, status, message, epoch, last_metrics,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run["id"],
                seq,
                run["name"],
                json.dumps(run["config"]),
                run["status"],
                run.get("message"),
                run.get("epoch", 0),
                _json_or_none(run.get("last_metrics")),
                run["created_at"],
                run["updated_at"],
            ),
        )
        cls._put_data(db, run["id"], custom, initial)

    @staticmethod
    def _put_data(
        db: sqlite3.Connection,
        run_id: str,
        custom: Mapping[str, np.ndarray] | None,
        initial: Checkpoint | None,
    ) -> None:
        """Write a new run's custom data and starting weights (rows deleted before)."""
        if custom is not None:
            db.execute(
                "INSERT INTO datasets (run_id, arrays) VALUES (?, ?)", (run_id, pack_arrays(custom))
            )
        if initial is not None:
            blob = pack_arrays(initial.arrays)
            db.execute("INSERT INTO initial_weights (run_id, arrays) VALUES (?, ?)", (run_id, blob))
            db.execute(
                "INSERT OR REPLACE INTO checkpoints (run_id, epoch, arrays, meta)"
                " VALUES (?, ?, ?, ?)",
                (run_id, initial.epoch, blob, json.dumps(initial.meta)),
            )

    def load_initial(self, run_id: str) -> np.ndarray | None:
        """The weights a run starts from instead of its initialiser's (flat), or None."""
        rows = self._read("SELECT arrays FROM initial_weights WHERE run_id = ?", (run_id,))
        return unpack_arrays(rows[0][0])["params"] if rows else None

    def count_runs(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM runs")[0][0])

    def count_running(self) -> int:
        """Runs `running` in this database, whoever trains them (the cluster-wide limit)."""
        return int(self._read("SELECT COUNT(*) FROM runs WHERE status = 'running'")[0][0])

    def load_runs(self) -> list[dict[str, Any]]:
        """Every run row, oldest first (config and last_metrics decoded)."""
        rows = self._read(
            "SELECT id, name, config, status, message, epoch, last_metrics, created_at,"
            " updated_at FROM runs ORDER BY seq"
        )
        return [_run_row(r) for r in rows]

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set any of RUN_FIELDS (config/last_metrics as dicts)."""
        with self._tx() as db:
            self._update_run(db, run_id, fields)

    @staticmethod
    def _update_run(db: sqlite3.Connection, run_id: str, fields: Mapping[str, Any]) -> None:
        if not fields:
            return
        unknown = set(fields) - set(RUN_FIELDS)
        if unknown:
            raise ValueError(f"unknown run fields {sorted(unknown)}")
        values = [
            json.dumps(v) if k == "config" else _json_or_none(v) if k == "last_metrics" else v
            for k, v in fields.items()
        ]
        assignments = ", ".join(f"{k} = ?" for k in fields)
        db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*values, run_id))

    def delete_run(self, run_id: str) -> None:
        with self._tx() as db:
            self._delete_run(db, run_id)
        self.release_free_pages()

    @staticmethod
    def _delete_run(db: sqlite3.Connection, run_id: str) -> None:
        tables = (
            "metrics",
            "checkpoints",
            "datasets",
            "initial_weights",
            "snapshots",
            "leases",
            "sweep_runs",
        )
        for table in tables:
            db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
        db.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def load_run(self, run_id: str) -> dict[str, Any] | None:
        """One run row as `load_runs` gives it, or None."""
        rows = self._read(
            "SELECT id, name, config, status, message, epoch, last_metrics, created_at,"
            " updated_at FROM runs WHERE id = ?",
            (run_id,),
        )
        return _run_row(rows[0]) if rows else None

    def copy_run(self, source_id: str, new_id: str, name: str, now: str) -> None:
        """A new run `new_id` with everything of `source_id` (row, metrics, checkpoint,
        custom data) as stored, named `name`, created and updated `now`."""
        with self._tx() as db:
            (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM runs").fetchone()
            db.execute(
                "INSERT INTO runs (id, seq, name, config, status, message, epoch, last_metrics,"
                " created_at, updated_at) SELECT ?, ?, ?, config, status, message, epoch,"
                " last_metrics, ?, ? FROM runs WHERE id = ?",
                (new_id, seq, name, now, now, source_id),
            )
            db.execute(
                "UPDATE runs SET config = json_set(config, '$.name', ?) WHERE id = ?",
                (name, new_id),
            )
            db.execute(
                "INSERT INTO metrics (run_id, epoch, train_loss, test_loss, train_accuracy,"
                " test_accuracy, grad_norms, learning_rate) SELECT ?, epoch, train_loss,"
                " test_loss, train_accuracy, test_accuracy, grad_norms, learning_rate"
                " FROM metrics WHERE run_id = ?",
                (new_id, source_id),
            )
            for table, columns in (
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
        custom: Mapping[str, np.ndarray] | None,
        initial: Checkpoint | None = None,
    ) -> None:
        """A structural change: drop metrics and checkpoint, replace the custom data and
        starting weights (None: none) and update the run row, in one transaction."""
        with self._tx() as db:
            for table in ("metrics", "checkpoints", "datasets", "initial_weights", "snapshots"):
                db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            self._put_data(db, run_id, custom, initial)
            self._update_run(db, run_id, run_fields)
        self.release_free_pages()

    # ---- leases (app.runs.leases says what they mean) ----------------------------------

    def lease(self, run_id: str) -> tuple[str, float] | None:
        """(owner, expires_at) of the run's lease, or None."""
        rows = self._read("SELECT owner, expires_at FROM leases WHERE run_id = ?", (run_id,))
        return (str(rows[0][0]), float(rows[0][1])) if rows else None

    def take_lease(
        self, run_id: str, owner: str, expires_at: float, is_live: Callable[[str, float], bool]
    ) -> str | None:
        """Take (or renew) the run's lease unless `is_live(holder, expiry)` says another
        owner still holds it; returns that owner, or None when the lease is ours now."""
        with self._tx() as db:
            row = db.execute(
                "SELECT owner, expires_at FROM leases WHERE run_id = ?", (run_id,)
            ).fetchone()
            if row is not None and is_live(str(row[0]), float(row[1])):
                return str(row[0])
            db.execute(
                "INSERT OR REPLACE INTO leases (run_id, owner, expires_at) VALUES (?, ?, ?)",
                (run_id, owner, expires_at),
            )
            return None

    def renew_leases(self, owner: str, expires_at: float) -> None:
        with self._tx() as db:
            db.execute("UPDATE leases SET expires_at = ? WHERE owner = ?", (expires_at, owner))

    def release_lease(self, run_id: str, owner: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM leases WHERE run_id = ? AND owner = ?", (run_id, owner))

    def load_custom(self, run_id: str) -> dict[str, np.ndarray] | None:
        rows = self._read("SELECT arrays FROM datasets WHERE run_id = ?", (run_id,))
        return unpack_arrays(rows[0][0]) if rows else None

    # ---- training progress --------------------------------------------------------------

    def commit_progress(
        self,
        run_id: str,
        metrics: Sequence[MetricRow] = (),
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
                    "INSERT OR REPLACE INTO metrics (run_id, epoch, train_loss, test_loss,"
                    " train_accuracy, test_accuracy, grad_norms, learning_rate)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    # orjson writes non-finite norms as null, like finite_or_none, at a
                    # tenth of the cost of json.dumps.
                    [
                        (
                            run_id,
                            int(m.epoch),
                            finite_or_none(m.train_loss),
                            finite_or_none(m.test_loss),
                            finite_or_none(m.train_accuracy),
                            finite_or_none(m.test_accuracy),
                            orjson.dumps(m.grad_norms, option=_NUMPY).decode(),
                            finite_or_none(m.learning_rate),
                        )
                        for m in metrics[start : start + METRIC_SLICE]
                    ],
                )
            if checkpoint is not None:
                db.execute(
                    "INSERT OR REPLACE INTO checkpoints (run_id, epoch, arrays, meta)"
                    " VALUES (?, ?, ?, ?)",
                    (run_id, int(checkpoint.epoch), blob, json.dumps(checkpoint.meta)),
                )
            if snapshots:
                db.executemany(
                    "INSERT OR REPLACE INTO snapshots (run_id, epoch, params) VALUES (?, ?, ?)",
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
        return (int(rows[0][0]), unpack_arrays(rows[0][1])["params"]) if rows else None

    def clear_progress(self, run_id: str, run_fields: Mapping[str, Any] | None = None) -> None:
        """Drop every metric and the checkpoint (reset), updating the run row with it; a
        run with starting weights of its own gets them back as its checkpoint."""
        with self._tx() as db:
            db.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM checkpoints WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM snapshots WHERE run_id = ?", (run_id,))
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
                "SELECT train_loss, test_loss, train_accuracy, test_accuracy FROM metrics"
                " WHERE run_id = ? AND epoch = ?",
                (run_id, epoch),
            ).fetchone()
            last_metrics = dict(zip(METRIC_COLUMNS, last, strict=True)) if last else None
            fields = {**run_fields, "epoch": epoch, "last_metrics": last_metrics}
            self._update_run(db, run_id, fields)
            return epoch

    def load_metrics(self, run_id: str, since: int = 0) -> list[MetricRow]:
        rows = self._read(
            "SELECT epoch, train_loss, test_loss, train_accuracy, test_accuracy, grad_norms,"
            " learning_rate FROM metrics WHERE run_id = ? AND epoch > ? ORDER BY epoch",
            (run_id, since),
        )
        return [MetricRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]

    def release_free_pages(self) -> None:
        """Give the space of deleted rows back to the file system (see `vacuum`). The
        delete before it is committed already: a failure here only keeps the space."""
        try:
            vacuum.release_free_pages(self._connection())
        except sqlite3.Error as exc:
            vacuum.log.warning("giving back free pages of %s failed: %s", self.path, exc)

    def load_params(self, run_id: str) -> tuple[int, np.ndarray] | None:
        """The checkpoint's epoch and its `params` array alone (the optimizer's arrays in
        the same blob are not decoded), or None without a checkpoint."""
        rows = self._read("SELECT epoch, arrays FROM checkpoints WHERE run_id = ?", (run_id,))
        if not rows:
            return None
        epoch, blob = rows[0]
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            return int(epoch), npz["params"]

    def load_checkpoint(self, run_id: str) -> Checkpoint | None:
        rows = self._read("SELECT epoch, arrays, meta FROM checkpoints WHERE run_id = ?", (run_id,))
        if not rows:
            return None
        epoch, blob, meta = rows[0]
        return Checkpoint(int(epoch), unpack_arrays(blob), json.loads(meta))

    # ---- sweeps (API.md v1.1 "Sweeps and the `queued` status") --------------------------

    def insert_sweep(
        self,
        sweep: Mapping[str, Any],
        runs: Sequence[
            tuple[Mapping[str, Any], Mapping[str, np.ndarray] | None, Checkpoint | None, int]
        ],
    ) -> None:
        """A sweep (keys: id, name, grid, base, created_at) and its runs (row, custom data
        and starting weights as `insert_run` takes them, queue ticket), in grid order,
        atomically: all of them or nothing."""
        with self._tx() as db:
            (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM sweeps").fetchone()
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
        rows = self._read("SELECT id, name, grid, base, created_at FROM sweeps ORDER BY seq")
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


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a database made by an older version up to SCHEMA (PRAGMA user_version)."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version < 1:  # v1.1: the learning rate each epoch trained with
        columns = {row[1] for row in db.execute("PRAGMA table_info(metrics)")}
        if "learning_rate" not in columns:
            db.execute("ALTER TABLE metrics ADD COLUMN learning_rate REAL")
        db.execute("PRAGMA user_version = 1")
        db.commit()


def _run_row(r: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": r[0],
        "name": r[1],
        "config": json.loads(r[2]),
        "status": r[3],
        "message": r[4],
        "epoch": r[5],
        "last_metrics": json.loads(r[6]) if r[6] else None,
        "created_at": r[7],
        "updated_at": r[8],
    }


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value)

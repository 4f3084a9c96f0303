"""The base of the SQL store: what a backend gives, the schema, shared statements.

A backend (`app.storage.sqlite`, `app.storage.postgres`) subclasses `SqlStore`
(app.storage.sql, the `Store` protocol's methods) and gives it transactions and
reads (`_tx`, `_read`), the schema version's home, and its words for a blob
column. The statements here are written in the part
of SQL both databases speak, with ``?`` placeholders (the PostgreSQL backend
turns them into ``%s``): ``INSERT … ON CONFLICT … DO UPDATE`` instead of SQLite's
``INSERT OR REPLACE``, JSON edited in Python instead of ``json_set``.

Threading: the manager does all writes of a running run (metrics batches,
checkpoints) in its one writer thread, so a 20 MB checkpoint never stalls the
event loop; reads and small status updates are short transactions that may run
on the loop. Arrays are one `np.savez` blob each, everything else JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import orjson

from app.nn.metrics import EpochMetrics, finite_or_none
from app.storage.protocol import CustomData
from app.storage.records import (
    METRIC_COLUMNS,
    RUN_FIELDS,
    Checkpoint,
    pack_arrays,
)
from app.storage.schema import MIGRATIONS, SchemaAccess, tables

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
RUN_COLUMNS = "id, name, config, status, message, epoch, last_metrics, created_at, updated_at"
# Tables with a run's rows, keyed by run_id (the runs table itself is keyed by id).
RUN_TABLES = ("metrics", "checkpoints", "datasets", "initial_weights", "snapshots")


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Tx(Protocol):
    """One transaction's connection, with ``?`` placeholders."""

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]], /) -> Any: ...


def upsert(table: str, keys: tuple[str, ...], values: tuple[str, ...]) -> str:
    """INSERT of keys + values that replaces the values of a row with the same keys."""
    columns = (*keys, *values)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
        + ", ".join(f"{v} = excluded.{v}" for v in values)
    )


UPSERT_CHECKPOINT = upsert("checkpoints", ("run_id",), ("epoch", "arrays", "meta"))
UPSERT_METRIC = upsert(
    "metrics",
    ("run_id", "epoch"),
    (*METRIC_COLUMNS, "grad_norms", "learning_rate"),
)
UPSERT_SNAPSHOT = upsert("snapshots", ("run_id", "epoch"), ("params",))


class SqlBase:
    """What a backend gives (`_tx`, `_read`, the schema version), the schema, and the
    statements several `SqlStore` methods share."""

    BLOB = "BLOB"
    WITHOUT_ROWID = ""
    FOR_UPDATE = ""  # row lock of a SELECT in a transaction (SQLite locks the database)

    # ---- the backend's part -------------------------------------------------------------

    def _tx(self) -> AbstractContextManager[Tx]:
        """A write transaction: committed at the end, rolled back on any exception;
        database errors come out as StorageError."""
        raise NotImplementedError

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _schema_version(self, db: Tx) -> int:
        raise NotImplementedError

    def _set_schema_version(self, db: Tx, version: int) -> None:
        raise NotImplementedError

    def _columns(self, db: Tx, table: str) -> set[str]:
        raise NotImplementedError

    def _lock_schema(self, db: Tx) -> None:
        """Keep other processes from creating or migrating the schema meanwhile."""

    def _lock_order(self, db: Tx) -> None:
        """Keep other processes from numbering a new run or sweep (`seq`) meanwhile, so
        the list order is the order of creation (SQLite's write lock does it already)."""

    def _lock_running(self, db: Tx) -> None:
        """Keep other processes from marking a run `running` meanwhile (`claim_running`;
        SQLite's write lock does it already)."""

    def _next_seq(self, db: Tx, table: str) -> int:
        self._lock_order(db)
        (seq,) = db.execute(f"SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}").fetchone()
        return int(seq)

    def release_free_pages(self) -> None:
        """Give the space of deleted rows back (after the delete is committed)."""

    def close(self) -> None:
        raise NotImplementedError

    # ---- schema ---------------------------------------------------------------------------

    def _initialise(self) -> None:
        """Create the tables and apply the migrations this database has not had."""
        with self._tx() as db:
            self._lock_schema(db)
            for statement in tables(self.BLOB, self.WITHOUT_ROWID):
                db.execute(statement)
            version = self._schema_version(db)
            access = SchemaAccess(lambda sql: db.execute(sql), lambda t: self._columns(db, t))
            for migration in MIGRATIONS:
                if migration.version > version:
                    migration.apply(access)
                    self._set_schema_version(db, migration.version)

    # ---- runs ---------------------------------------------------------------------------
    # ---- helpers inside a caller's transaction --------------------------------------

    def _insert_run(
        self,
        db: Tx,
        run: Mapping[str, Any],
        custom: CustomData | None,
        initial: Checkpoint | None,
    ) -> None:
        """One run row (see `insert_run`) inside the caller's transaction."""
        seq = self._next_seq(db, "runs")
        db.execute(
            f"INSERT INTO runs (seq, {RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                seq,
                run["id"],
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
        self._put_data(db, run["id"], custom, initial)

    @staticmethod
    def _put_data(
        db: Tx, run_id: str, custom: CustomData | None, initial: Checkpoint | None
    ) -> None:
        """Write a new run's custom data and starting weights (rows deleted before)."""
        if custom is not None:
            db.execute(
                "INSERT INTO datasets (run_id, arrays) VALUES (?, ?)", (run_id, pack_arrays(custom))
            )
        if initial is not None:
            blob = pack_arrays(initial.arrays)
            db.execute("INSERT INTO initial_weights (run_id, arrays) VALUES (?, ?)", (run_id, blob))
            db.execute(UPSERT_CHECKPOINT, (run_id, initial.epoch, blob, json.dumps(initial.meta)))

    @staticmethod
    def _update_run(db: Tx, run_id: str, fields: Mapping[str, Any]) -> None:
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

    @staticmethod
    def _delete_run(db: Tx, run_id: str) -> None:
        for table in (*RUN_TABLES, "leases", "sweep_runs"):
            db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
        db.execute("DELETE FROM runs WHERE id = ?", (run_id,))


def metric_values(run_id: str, m: EpochMetrics) -> tuple[Any, ...]:
    # orjson writes non-finite norms as null, like finite_or_none, at a tenth of the
    # cost of json.dumps.
    return (
        run_id,
        int(m.epoch),
        finite_or_none(m.train_loss),
        finite_or_none(m.test_loss),
        finite_or_none(m.train_accuracy),
        finite_or_none(m.test_accuracy),
        orjson.dumps(m.grad_norms, option=_NUMPY).decode(),
        finite_or_none(m.learning_rate),
    )


def run_row(r: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": r[0],
        "name": r[1],
        "config": json.loads(r[2]),
        "status": r[3],
        "message": r[4],
        "epoch": int(r[5]),
        "last_metrics": json.loads(r[6]) if r[6] else None,
        "created_at": r[7],
        "updated_at": r[8],
    }


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value)

"""The tables, and the migrations that bring an older database up to them.

One text for both databases: ``{blob}`` is BLOB (SQLite) or BYTEA (PostgreSQL),
``{without_rowid}`` is SQLite's clustered-table option (nothing on PostgreSQL).
Numbers are DOUBLE PRECISION (8-byte floats; SQLite reads the name as REAL, which
is 8 bytes there, but PostgreSQL's REAL is 4) and BIGINT.

A database records the last migration applied to it (SQLite: ``PRAGMA
user_version``; PostgreSQL: the ``schema_version`` table). The tables are created
as they are now, so a new database has every column: each migration checks before
it changes anything, and records its number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TABLES = (
    """CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    epoch BIGINT NOT NULL DEFAULT 0,
    last_metrics TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    train_loss DOUBLE PRECISION,
    test_loss DOUBLE PRECISION,
    train_accuracy DOUBLE PRECISION,
    test_accuracy DOUBLE PRECISION,
    grad_norms TEXT NOT NULL,
    learning_rate DOUBLE PRECISION,
    PRIMARY KEY (run_id, epoch)
){without_rowid}""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT PRIMARY KEY,
    epoch BIGINT NOT NULL,
    arrays {blob} NOT NULL,
    meta TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS datasets (
    run_id TEXT PRIMARY KEY,
    arrays {blob} NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS initial_weights (
    run_id TEXT PRIMARY KEY,
    arrays {blob} NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS snapshots (
    run_id TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    params {blob} NOT NULL,
    PRIMARY KEY (run_id, epoch)
){without_rowid}""",
    """CREATE TABLE IF NOT EXISTS leases (
    run_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
)""",
    # sweeps (API.md v1.1): a sweep, and which runs are its own, in grid order; queued_at
    # orders the queue of its runs waiting with status `queued` (oldest first).
    """CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    name TEXT NOT NULL,
    grid TEXT NOT NULL,
    base TEXT NOT NULL,
    created_at TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS sweep_runs (
    run_id TEXT PRIMARY KEY,
    sweep_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    queued_at BIGINT
)""",
)


def tables(blob: str, without_rowid: str) -> list[str]:
    """The CREATE TABLE statements in one database's words."""
    return [t.format(blob=blob, without_rowid=without_rowid) for t in TABLES]


@dataclass(frozen=True)
class SchemaAccess:
    """What a migration may do, in the database's own way (the store gives both)."""

    execute: Callable[[str], Any]  # one statement, no parameters
    columns: Callable[[str], set[str]]  # a table's column names


@dataclass(frozen=True)
class Migration:
    version: int
    why: str
    apply: Callable[[SchemaAccess], None]


def _learning_rate(db: SchemaAccess) -> None:
    if "learning_rate" not in db.columns("metrics"):
        db.execute("ALTER TABLE metrics ADD COLUMN learning_rate DOUBLE PRECISION")


# In order; a new one gets the next number and checks before it changes anything.
MIGRATIONS = (Migration(1, "v1.1: the learning rate each epoch trained with", _learning_rate),)
LATEST = MIGRATIONS[-1].version

"""The store the runs layer uses: `open_store` picks SQLite or PostgreSQL.

`Store` is the protocol (app.storage.protocol); the records it keeps are in
app.storage.records. ``BACKPROP_LIVE_DB`` is a SQLite file path (the default,
nothing to install) or a ``postgresql://`` URL (psycopg, imported only then).
"""

from __future__ import annotations

from pathlib import Path

from app.storage.errors import StorageError
from app.storage.locations import is_postgres
from app.storage.protocol import Store
from app.storage.records import (
    INITIAL_META,
    METRIC_COLUMNS,
    METRIC_SLICE,
    PARAMS_ONLY,
    RUN_FIELDS,
    Checkpoint,
    Snapshot,
    pack_arrays,
    unpack_arrays,
)
from app.storage.schema import tables
from app.storage.sqlite import SqliteStore

# The tables as a SQLite script (a test makes a database of an older version with it).
SCHEMA = ";\n".join(tables(SqliteStore.BLOB, SqliteStore.WITHOUT_ROWID)) + ";\n"

__all__ = [
    "INITIAL_META",
    "METRIC_COLUMNS",
    "METRIC_SLICE",
    "PARAMS_ONLY",
    "RUN_FIELDS",
    "SCHEMA",
    "Checkpoint",
    "Snapshot",
    "SqliteStore",
    "Store",
    "open_store",
    "pack_arrays",
    "unpack_arrays",
]


def open_store(db: str | Path) -> Store:
    """The store at `db`: a ``postgresql://`` (or ``postgres://``) URL, else a SQLite file."""
    location = str(db)
    if not is_postgres(location):
        return SqliteStore(location)
    try:
        from app.storage.postgres import PostgresStore
    except ImportError as exc:
        raise StorageError(
            "BACKPROP_LIVE_DB is a PostgreSQL URL, but psycopg is not installed: "
            "pip install 'backprop-live[postgres]'"
        ) from exc
    return PostgresStore(location)

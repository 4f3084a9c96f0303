"""The SQLite store (stdlib sqlite3, WAL): one file, the default.

Every thread gets its own connection (WAL lets the event loop read while the
manager's writer thread commits). Every sqlite error is raised as
`StorageError` (full disk, read-only file, corruption → API 503).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from app.storage import vacuum
from app.storage.errors import StorageError
from app.storage.sql import SqlStore, Tx


class SqliteStore(SqlStore):
    """One SQLite file; safe to use from several threads (one connection each)."""

    BLOB = "BLOB"
    WITHOUT_ROWID = " WITHOUT ROWID"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) == ":memory:":
            raise StorageError("an in-memory database cannot be shared with workers; use a file")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        try:
            vacuum.prepare(self._connection(), self.path)  # before the first table of a new file
        except sqlite3.Error as exc:
            raise StorageError(f"cannot initialise database {self.path}: {exc}") from exc
        self._initialise()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

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
    def _tx(self) -> Iterator[Tx]:
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

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
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

    # ---- schema version and space ------------------------------------------------------

    def _schema_version(self, db: Tx) -> int:
        return int(db.execute("PRAGMA user_version").fetchone()[0])

    def _set_schema_version(self, db: Tx, version: int) -> None:
        db.execute(f"PRAGMA user_version = {int(version)}")

    def _columns(self, db: Tx, table: str) -> set[str]:
        return {str(row[1]) for row in db.execute(f"PRAGMA table_info({table})").fetchall()}

    def release_free_pages(self) -> None:
        """Give the space of deleted rows back to the file system (see `vacuum`). The
        delete before it is committed already: a failure here only keeps the space."""
        try:
            vacuum.release_free_pages(self._connection())
        except sqlite3.Error as exc:
            vacuum.log.warning("giving back free pages of %s failed: %s", self.path, exc)

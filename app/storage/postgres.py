"""The PostgreSQL store: psycopg 3 with a connection pool (``pip install '.[postgres]'``).

Chosen by ``BACKPROP_LIVE_DB=postgresql://…``; this module is imported only then.
Connections are in autocommit (a read is one statement); a write is an explicit
transaction. The schema is created and migrated under an advisory lock, so two
servers starting at once on one database do not race. A server that cannot be
reached within `CONNECT_TIMEOUT` seconds is a `StorageError` (the API's 503).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from app.storage.errors import StorageError
from app.storage.locations import redacted
from app.storage.sql import Cursor, SqlStore, Tx

CONNECT_TIMEOUT = 5  # seconds to wait for a connection (new, or free in the pool)
POOL_SIZE = 8  # connections per process: the event loop, the writer, the job threads
SCHEMA_LOCK = 0x62706C76  # pg_advisory_xact_lock key of schema changes ("bplv")
ORDER_LOCK = SCHEMA_LOCK + 1  # ... and of numbering new runs and sweeps
RUNNING_LOCK = SCHEMA_LOCK + 2  # ... and of taking a training slot (claim_running)


@functools.lru_cache(maxsize=256)
def _sql(sql: str) -> str:
    """SQLite's ``?`` placeholders as psycopg's ``%s`` (a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _params(params: Sequence[Any]) -> tuple[Any, ...] | None:
    # NumPy scalars (an epoch counted by the trainer) as the Python numbers psycopg knows.
    if not params:
        return None
    return tuple(p.item() if isinstance(p, np.generic) else p for p in params)


class _Tx:
    """A psycopg connection that takes the shared SQL's placeholders."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self._conn.execute(_sql(sql), _params(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(_sql(sql), [_params(row) or () for row in rows])


class PostgresStore(SqlStore):
    """One PostgreSQL database, shared by any number of servers."""

    BLOB = "BYTEA"
    WITHOUT_ROWID = ""
    FOR_UPDATE = " FOR UPDATE"

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE) -> None:
        self.where = redacted(url)
        self._closed = False
        self._lock = threading.Lock()
        try:  # one plain connection first: its error says why (refused, auth, no database)
            psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, autocommit=True).close()
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to PostgreSQL at {self.where}: {exc}") from exc
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            timeout=CONNECT_TIMEOUT,
            # A lost connection is re-made with a backoff that doubles (1, 2, 4, 8 … s) for
            # `reconnect_timeout`, 300 s by default: after an outage of a minute the server
            # would wait half a minute more before it tried again. Given up after as long
            # as a request waits, the next request starts a new attempt at once, so the
            # server stores again within seconds of PostgreSQL's return.
            reconnect_timeout=CONNECT_TIMEOUT,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
            check=ConnectionPool.check_connection,  # a server restart costs no request
            name="backprop-live",
            open=False,
        )
        try:
            try:
                self._pool.open(wait=True, timeout=CONNECT_TIMEOUT)
            except psycopg.Error as exc:
                raise self._error(exc) from exc
            self._initialise()
        except BaseException:
            self._pool.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r})"

    # ---- connections and transactions -------------------------------------------------

    def _error(self, exc: psycopg.Error) -> StorageError:
        if isinstance(exc, PoolTimeout):
            detail = f"no connection within {CONNECT_TIMEOUT} s (is the server up?)"
        else:
            detail = str(exc).strip() or type(exc).__name__
        return StorageError(f"PostgreSQL at {self.where}: {detail}")

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if self._closed:
            raise StorageError("the store is closed")
        with self._pool.connection() as conn:
            yield conn

    @contextmanager
    def _tx(self) -> Iterator[Tx]:
        try:
            with self._connection() as conn, conn.transaction():
                yield _Tx(conn)
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            with self._connection() as conn:
                return conn.execute(_sql(sql), _params(params)).fetchall()
        except psycopg.Error as exc:
            raise self._error(exc) from exc

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._pool.close(timeout=CONNECT_TIMEOUT)

    # ---- schema version ------------------------------------------------------------------

    def _lock_schema(self, db: Tx) -> None:
        db.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))

    def _lock_order(self, db: Tx) -> None:
        db.execute("SELECT pg_advisory_xact_lock(?)", (ORDER_LOCK,))

    def _lock_running(self, db: Tx) -> None:
        db.execute("SELECT pg_advisory_xact_lock(?)", (RUNNING_LOCK,))

    def _schema_version(self, db: Tx) -> int:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        (version,) = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(version or 0)

    def _set_schema_version(self, db: Tx, version: int) -> None:
        db.execute("DELETE FROM schema_version")
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (int(version),))

    def _columns(self, db: Tx, table: str) -> set[str]:
        rows = db.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        ).fetchall()
        return {str(r[0]) for r in rows}

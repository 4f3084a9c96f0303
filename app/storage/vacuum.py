"""Giving a deleted run's space back to the file system (SQLite incremental vacuum).

SQLite keeps the pages of deleted rows in its file (a free list) unless the
database was made with ``auto_vacuum = INCREMENTAL``; then ``PRAGMA
incremental_vacuum`` moves them to the end of the file and cuts them off. The
mode can only be chosen before the first table exists, or by rewriting the
whole file once (``VACUUM``). `prepare` does that at start-up for a file still
small enough to rewrite quickly (`REWRITE_MAX_BYTES`) and logs how to do it by
hand for a larger one. `release_free_pages` runs after the deletes (the
manager's writer thread calls the store's deletes), then truncates the
write-ahead log, which a big checkpoint's write had grown.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL
# A database without incremental vacuum is rewritten at start-up up to this size
# (VACUUM copies the file: ~1 s per 100 MB here); a larger one is left as it is.
REWRITE_MAX_BYTES = 64 * 1024 * 1024


def prepare(db: sqlite3.Connection, path: Path) -> None:
    """Make ``db`` (an autocommit connection, before the schema is created) a database
    whose freed pages can be given back: a new file at once, an old one if small."""
    (mode,) = db.execute("PRAGMA auto_vacuum").fetchone()
    if mode == INCREMENTAL:
        return
    db.execute("PRAGMA auto_vacuum = INCREMENTAL")
    # Applied by VACUUM, even to a new file: turning WAL on has already written its header.
    size = path.stat().st_size if path.exists() else 0
    if size > REWRITE_MAX_BYTES:
        log.warning(
            "%s (%d MB) keeps the space of deleted runs; to give it back once, stop the "
            "server and run: sqlite3 %s 'PRAGMA auto_vacuum = INCREMENTAL; VACUUM'",
            path,
            size // 2**20,
            path,
        )
        return
    try:
        db.execute("VACUUM")  # rewrites the file in the new mode
    except sqlite3.OperationalError as exc:  # e.g. another process is using the file
        log.warning("%s keeps the space of deleted runs for now (VACUUM: %s)", path, exc)


def release_free_pages(db: sqlite3.Connection) -> None:
    """Cut the free pages off the file's end and empty the write-ahead log (autocommit;
    a reader still in the log only makes the truncation wait for the next time)."""
    # executescript steps the pragma to its end; execute() would free one page per call.
    db.executescript("PRAGMA incremental_vacuum;")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

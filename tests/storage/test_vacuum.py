"""Deleting runs gives the database file's space back (incremental vacuum)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from app.storage import vacuum
from app.storage.store import SCHEMA, Checkpoint, SqliteStore
from tests.storage.test_store import rows, run_row

MB = 2**20


def on_disk(path: Path) -> int:
    """The database's bytes on disk: the file and its write-ahead log."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def big_checkpoint(seed: int) -> Checkpoint:
    rng = np.random.default_rng(seed)  # random: the blob does not compress
    arrays = {"params": rng.normal(size=500_000), "optimizer.m": rng.normal(size=500_000)}
    return Checkpoint(3, arrays, {"epoch": 3})


def store_big_runs(store: SqliteStore, ids: list[str]) -> None:
    for i, run_id in enumerate(ids):
        store.insert_run(run_row(run_id), {"x": np.zeros((50_000, 2)), "y": np.zeros(50_000)})
        store.commit_progress(run_id, rows(1, 3), big_checkpoint(i), {"epoch": 3})


def test_deleting_runs_shrinks_the_file(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SqliteStore(path)
    empty = on_disk(path)
    ids = [f"r{i}" for i in range(5)]
    store_big_runs(store, ids)
    full = on_disk(path)
    assert full > empty + 5 * 8 * MB  # five 8 MB checkpoints (and 1.2 MB of data each)
    for run_id in ids:
        store.delete_run(run_id)
    assert on_disk(path) < empty + MB
    store.close()


def test_reset_gives_the_checkpoint_back(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SqliteStore(path)
    store_big_runs(store, ["a"])
    before = on_disk(path)
    store.clear_progress("a", {"epoch": 0})
    assert on_disk(path) < before - 7 * MB
    assert store.load_params("a") is None
    store.close()


def test_load_params_reads_the_weights_alone(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "runs.db")
    store_big_runs(store, ["a"])
    epoch, params = store.load_params("a")  # type: ignore[misc]
    expected = big_checkpoint(0).arrays["params"]
    assert epoch == 3 and np.array_equal(params, expected)
    store.close()


def test_an_old_small_database_is_rewritten_once_for_incremental_vacuum(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(SCHEMA)  # made before this change: auto_vacuum = NONE
    assert db.execute("PRAGMA auto_vacuum").fetchone() == (0,)
    db.close()
    store = SqliteStore(path)
    store.insert_run(run_row("kept"))
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA auto_vacuum").fetchone() == (vacuum.INCREMENTAL,)
    assert db.execute("SELECT id FROM runs").fetchall() == [("kept",)]
    db.close()


def test_an_old_large_database_is_left_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(SCHEMA)
    db.close()
    monkeypatch.setattr(vacuum, "REWRITE_MAX_BYTES", 0)
    SqliteStore(path).close()  # starts, keeps the data and the mode (and logs how to convert)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA auto_vacuum").fetchone() == (0,)
    db.close()

"""Store: round trips, one-transaction progress, rewinds, and storage errors, on
SQLite and on PostgreSQL (a database of the session's cluster, tests/pg.py)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.nn.metrics import EpochMetrics
from app.storage.errors import StorageError
from app.storage.store import (
    METRIC_SLICE,
    Checkpoint,
    SqliteStore,
    Store,
    open_store,
    pack_arrays,
    unpack_arrays,
)

OpenStore = Callable[[], Store]


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One empty database of each kind: a SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "s.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def make_store(location: str) -> Iterator[OpenStore]:
    """Opens a store on the test's database (again: a second process's view of it)."""
    opened: list[Store] = []

    def make() -> Store:
        opened.append(open_store(location))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


def run_row(run_id: str = "a", **fields: Any) -> dict[str, Any]:
    return {
        "id": run_id,
        "name": "first",
        "config": {"epochs": 10, "dataset": {"kind": "xor"}},
        "status": "created",
        "message": None,
        "epoch": 0,
        "last_metrics": None,
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
        **fields,
    }


def rows(first: int, last: int) -> list[EpochMetrics]:
    return [
        EpochMetrics(e, 1.0 / e, None, 0.5, None, [float(e), 0.0]) for e in range(first, last + 1)
    ]


def checkpoint(epoch: int) -> Checkpoint:
    arrays = {"params": np.arange(6, dtype=np.float32) + epoch, "optimizer.m.0": np.ones(6)}
    return Checkpoint(epoch, arrays, {"epoch": epoch, "shuffle_rng": {"state": "123"}})


def test_round_trip_and_order(make_store: OpenStore) -> None:
    store = make_store()
    custom = {"x": np.array([[0.0, 1.0], [2.0, 3.0]]), "y": np.array([0, 1])}
    store.insert_run(run_row("a"), custom)
    store.insert_run(run_row("b", name="second"))
    assert [r["id"] for r in store.load_runs()] == ["a", "b"]
    assert store.count_runs() == 2
    loaded = store.load_custom("a")
    assert loaded is not None and np.array_equal(loaded["x"], custom["x"])
    assert loaded["y"].dtype == np.int64 and store.load_custom("b") is None
    store.update_run("a", status="running", last_metrics={"train_loss": None})
    assert store.load_runs()[0]["status"] == "running"
    with pytest.raises(ValueError):
        store.update_run("a", bogus=1)
    store.close()


def test_progress_is_atomic_and_rewinds_to_the_checkpoint(make_store: OpenStore) -> None:
    store = make_store()
    store.insert_run(run_row())
    nan_row = EpochMetrics(6, float("nan"), float("inf"), None, None, [float("nan")])
    store.commit_progress("a", rows(1, 5), checkpoint(5), {"epoch": 5, "status": "running"})
    store.commit_progress("a", [nan_row])  # metrics after the checkpoint (a crash follows)
    assert store.load_metrics("a")[-1] == EpochMetrics(6, None, None, None, None, [None])
    saved = store.load_checkpoint("a")
    assert saved is not None and saved.epoch == 5 and saved.meta["shuffle_rng"]["state"] == "123"
    assert saved.arrays["params"].dtype == np.float32
    assert np.array_equal(saved.arrays["params"], checkpoint(5).arrays["params"])
    epoch = store.rewind_to_checkpoint("a", {"status": "interrupted"})
    assert epoch == 5 and [m.epoch for m in store.load_metrics("a")] == [1, 2, 3, 4, 5]
    run = store.load_runs()[0]
    assert (run["status"], run["epoch"]) == ("interrupted", 5)
    assert run["last_metrics"]["train_loss"] == pytest.approx(0.2)
    assert [m.epoch for m in store.load_metrics("a", since=3)] == [4, 5]
    store.clear_progress("a", {"epoch": 0, "status": "created"})
    assert store.load_metrics("a") == [] and store.load_checkpoint("a") is None
    store.delete_run("a")
    assert store.load_runs() == []
    store.close()


def test_failed_transaction_leaves_nothing(make_store: OpenStore) -> None:
    store = make_store()
    store.insert_run(run_row())
    with pytest.raises(ValueError):
        store.commit_progress("a", rows(1, 3), checkpoint(3), {"nope": 1})
    assert store.load_metrics("a") == [] and store.load_checkpoint("a") is None
    store.close()


def test_many_rows_are_stored_in_slices_of_one_transaction(make_store: OpenStore) -> None:
    """A checkpoint of a fast run carries thousands of rows; they are inserted in
    slices (the event loop gets the GIL in between) but still commit or fail as one."""
    store = make_store()
    store.insert_run(run_row())
    n = 2 * METRIC_SLICE + 7
    store.commit_progress("a", rows(1, n), checkpoint(n), {"epoch": n})
    loaded = store.load_metrics("a")
    assert loaded == rows(1, n)
    bad = [*rows(n + 1, n + METRIC_SLICE + 5), EpochMetrics("x", 1.0, None, None, None, [])]  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # int("x") in the second slice, after the first went in
        store.commit_progress("a", bad, checkpoint(2 * n), {"epoch": 2 * n})
    assert store.load_metrics("a") == loaded
    saved = store.load_checkpoint("a")
    assert saved is not None and saved.epoch == n
    store.close()


def test_full_disk_raises_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    store = SqliteStore(path)
    store.insert_run(run_row())
    store._connection().execute("PRAGMA max_page_count = 12")  # a tiny "disk"
    big = Checkpoint(1, {"params": np.random.default_rng(0).random(200_000)}, {})
    with pytest.raises(StorageError):
        store.commit_progress("a", rows(1, 1), big)
    assert store.load_metrics("a") == []  # rolled back
    store.close()


def test_unopenable_database_raises_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        SqliteStore(tmp_path / "missing-dir" / "x.db")
    with pytest.raises(StorageError):
        SqliteStore(":memory:")


def test_arrays_never_unpickle() -> None:
    blob = pack_arrays({"a": np.arange(3)})
    assert np.array_equal(unpack_arrays(blob)["a"], np.arange(3))
    buffer = io.BytesIO()
    np.savez(buffer, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError):
        unpack_arrays(buffer.getvalue())


def test_closed_store_refuses(make_store: OpenStore) -> None:
    store = make_store()
    store.close()
    with pytest.raises(StorageError):
        store.load_runs()

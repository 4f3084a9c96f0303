"""What the two stores must agree on: float64 kept to the bit, leases taken by one
process only, migrations from an older schema, the running count, and choosing
the store by the value of BACKPROP_LIVE_DB."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.config import Settings, SettingsError
from app.nn.metrics import EpochMetrics
from app.storage.errors import StorageError
from app.storage.schema import LATEST
from app.storage.store import SqliteStore, open_store
from tests.storage.test_store import OpenStore, location, make_store, run_row

__all__ = ["location", "make_store"]  # the fixtures, parametrized over both databases

# (-0.0 is left out: SQLite stores it as 0, a difference no metric can show.)
TRICKY = [0.1 + 0.2, 1e-300, 5e-324, 1.7976931348623157e308, -1 / 3]


def test_float64_survives_to_the_bit(make_store: OpenStore) -> None:
    store = make_store()
    store.insert_run(run_row())
    rows = [EpochMetrics(i + 1, v, v, v, v, [v, v], v) for i, v in enumerate(TRICKY)]
    store.commit_progress("a", rows)
    loaded = store.load_metrics("a")
    for row, value in zip(loaded, TRICKY, strict=True):
        for got in (row.train_loss, row.test_loss, row.train_accuracy, row.learning_rate):
            assert got is not None and got.hex() == value.hex()
        assert [g.hex() for g in row.grad_norms if g is not None] == [value.hex()] * 2
    expiry = 1_765_000_000.123456789  # time.time() needs 8 bytes: 4 would lose seconds
    assert store.take_lease("a", "me", expiry, lambda _h, _e: False) is None
    lease = store.lease("a")
    assert lease is not None and lease[1].hex() == expiry.hex()


def test_epochs_and_tickets_are_64_bit(make_store: OpenStore) -> None:
    store = make_store()
    big = 2**40
    store.insert_run(run_row(epoch=big))
    store.commit_progress("a", [EpochMetrics(big, 1.0, None, None, None, [])])
    assert store.load_run("a")["epoch"] == big  # type: ignore[index]
    assert [m.epoch for m in store.load_metrics("a", since=big - 1)] == [big]


def test_one_of_two_racing_processes_takes_a_lease(make_store: OpenStore) -> None:
    """Two stores (two servers' pools) race for the same free lease, many times over:
    each time exactly one wins, and the other is told who holds it."""
    stores = [make_store(), make_store()]
    run_ids = [f"r{i}" for i in range(30)]
    for run_id in run_ids:
        stores[0].insert_run(run_row(run_id))
    results: dict[tuple[str, int], str | None] = {}
    barrier = threading.Barrier(2, timeout=30)

    def contend(side: int) -> None:
        me = f"owner-{side}"
        for run_id in run_ids:
            barrier.wait()
            # Anyone else's lease is live: the loser must not take it over.
            results[run_id, side] = stores[side].take_lease(
                run_id, me, 2e9, lambda holder, _e, me=me: holder != me
            )

    threads = [threading.Thread(target=contend, args=(side,)) for side in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for run_id in run_ids:
        outcome = (results[run_id, 0], results[run_id, 1])
        assert outcome.count(None) == 1, outcome
        winner = f"owner-{outcome.index(None)}"
        assert winner in outcome  # the loser was told the winner's name
        assert stores[1].lease(run_id) == (winner, 2e9)


def test_a_lapsed_lease_is_taken_over_and_a_live_one_is_kept(make_store: OpenStore) -> None:
    store = make_store()
    store.insert_run(run_row())
    assert store.take_lease("a", "old", 10.0, lambda _h, _e: False) is None
    assert store.take_lease("a", "new", 20.0, lambda _h, e: e > 100) is None  # lapsed
    assert store.lease("a") == ("new", 20.0)
    assert store.take_lease("a", "third", 30.0, lambda _h, _e: True) == "new"
    store.renew_leases("new", 40.0)
    store.release_lease("a", "third")  # not its lease: nothing happens
    assert store.lease("a") == ("new", 40.0)
    store.release_lease("a", "new")
    assert store.lease("a") is None


def test_count_running(make_store: OpenStore) -> None:
    store = make_store()
    for run_id, status in (("a", "running"), ("b", "created"), ("c", "running")):
        store.insert_run(run_row(run_id, status=status))
    other = make_store()  # another server's view counts the same rows
    assert other.count_running() == 2
    store.update_run("a", status="stopped")
    assert other.count_running() == 1


def test_claim_running_never_overshoots_across_processes(make_store: OpenStore) -> None:
    """Two stores (two servers) claim the one free training slot at the same moment, many
    times over (the limit grows by one each round): each time exactly one gets it, and
    the other is told how many are running."""
    stores = [make_store(), make_store()]
    rounds = 25
    for i in range(rounds):
        for side in (0, 1):
            stores[0].insert_run(run_row(f"r{i}-{side}"))
    results: dict[tuple[int, int], int | None] = {}
    barrier = threading.Barrier(2, timeout=30)

    def claim(side: int) -> None:
        for i in range(rounds):
            barrier.wait()
            results[i, side] = stores[side].claim_running(f"r{i}-{side}", i + 1, message=None)
            barrier.wait()  # both claims of the round are done before the next

    threads = [threading.Thread(target=claim, args=(side,)) for side in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for i in range(rounds):
        assert sorted((results[i, 0], results[i, 1]), key=str) == [i + 1, None], i
    assert stores[1].count_running() == rounds
    # A run already `running` claims again without counting itself.
    running = [r["id"] for r in stores[0].load_runs() if r["status"] == "running"]
    assert stores[0].claim_running(running[0], rounds) is None


def test_copy_run_renames_its_config(make_store: OpenStore) -> None:
    store = make_store()
    store.insert_run(run_row(), {"x": np.ones((2, 2)), "y": np.zeros(2)})
    store.commit_progress("a", [EpochMetrics(1, 0.5, None, None, None, [1.0], 0.1)])
    store.copy_run("a", "b", "copy of first", "2026-02-02T00:00:00+00:00")
    copy = store.load_run("b")
    assert copy is not None and copy["name"] == copy["config"]["name"] == "copy of first"
    assert copy["config"]["epochs"] == 10 and copy["created_at"].startswith("2026-02-02")
    assert store.load_metrics("b") == store.load_metrics("a")
    custom = store.load_custom("b")
    assert custom is not None and np.array_equal(custom["x"], np.ones((2, 2)))
    assert [r["id"] for r in store.load_runs()] == ["a", "b"]


OLD_METRICS = (
    "CREATE TABLE metrics (run_id TEXT NOT NULL, epoch BIGINT NOT NULL,"
    " train_loss DOUBLE PRECISION, test_loss DOUBLE PRECISION,"
    " train_accuracy DOUBLE PRECISION, test_accuracy DOUBLE PRECISION,"
    " grad_norms TEXT NOT NULL, PRIMARY KEY (run_id, epoch))"
)


def _execute(location: str, sql: str) -> list[Any]:
    """One statement on the database behind the store, as another program would."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []
    with sqlite3.connect(location) as db:
        return db.execute(sql).fetchall()


def test_an_older_database_is_migrated(location: str, make_store: OpenStore) -> None:
    """A database from before v1.1 (metrics without learning_rate, version 0) gets the
    column and its version, once; its rows stay."""
    _execute(location, OLD_METRICS)
    _execute(location, "INSERT INTO metrics VALUES ('a', 1, 0.5, NULL, NULL, NULL, '[]')")
    store = make_store()
    store.insert_run(run_row())
    store.commit_progress("a", [EpochMetrics(2, 0.25, None, None, None, [], 0.125)])
    assert [(m.epoch, m.learning_rate) for m in store.load_metrics("a")] == [(1, None), (2, 0.125)]
    if location.startswith("postgresql://"):
        assert _execute(location, "SELECT version FROM schema_version") == [(LATEST,)]
    else:
        assert _execute(location, "PRAGMA user_version") == [(LATEST,)]
    make_store().close()  # opened again: nothing left to do, nothing breaks


def test_settings_take_a_file_or_a_postgresql_url() -> None:
    assert Settings.from_env({"BACKPROP_LIVE_DB": "runs.db"}).db == "runs.db"
    url = "postgresql://bp:secret@db.example:5433/runs"
    assert Settings.from_env({"BACKPROP_LIVE_DB": url}).db == url
    assert Settings(db=Path("/tmp/x.db")).db == "/tmp/x.db"
    for junk, words in (
        ("mysql://me@host/db", "mysql:// is not a database this server uses"),
        ("postgresql://bp:secret@host:port/db", "not a valid PostgreSQL URL"),
        ("postgresql://", "needs a host or a database name"),
        (":memory:", "must be a file"),
    ):
        with pytest.raises(SettingsError) as caught:
            Settings.from_env({"BACKPROP_LIVE_DB": junk})
        assert "BACKPROP_LIVE_DB" in str(caught.value) and words in str(caught.value)
        assert "secret" not in str(caught.value)


def test_open_store_picks_by_the_value(tmp_path: Path, postgres_url: str) -> None:
    sqlite_store = open_store(tmp_path / "x.db")
    assert isinstance(sqlite_store, SqliteStore)
    sqlite_store.close()
    from app.storage.postgres import PostgresStore

    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://")):
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        store.close()


def test_an_unreachable_server_is_a_storage_error_in_words(postgres_url: str) -> None:
    closed_port = postgres_url.rsplit(":", 1)[0] + ":1/nowhere"
    with pytest.raises(StorageError) as caught:
        open_store(closed_port.replace("postgres@", "postgres:pw@"))
    message = str(caught.value)
    assert "cannot connect to PostgreSQL at postgresql://postgres:***@127.0.0.1:1" in message
    assert "pw" not in message.replace("postgres", "")


def test_a_server_on_sqlite_never_imports_psycopg() -> None:
    code = (
        "import sys, app.main, app.cli, app.storage.store\n"
        "from app.storage.store import open_store\n"
        "assert not any(m.split('.')[0] in ('psycopg', 'psycopg_pool') for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_servers_starting_together_make_the_schema_once(postgres_url: str) -> None:
    """Four processes' stores open one new PostgreSQL database at the same moment: the
    advisory lock lets one create and migrate the tables, the others find them."""
    barrier = threading.Barrier(4, timeout=30)
    opened: list[Any] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            opened.append(open_store(postgres_url))
        except BaseException as exc:  # reported below, with the others' results
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == [] and len(opened) == 4
        opened[0].insert_run(run_row())
        assert [r["id"] for r in opened[3].load_runs()] == ["a"]
    finally:
        for store in opened:
            store.close()


def test_runs_made_at_once_by_two_processes_are_numbered_apart(
    location: str, make_store: OpenStore
) -> None:
    """The list order (`seq`) of runs two servers create at the same time: every number
    once, so every server lists them in one order."""
    stores = [make_store(), make_store()]
    barrier = threading.Barrier(2, timeout=30)

    def create(side: int) -> None:
        barrier.wait()
        for i in range(25):
            stores[side].insert_run(run_row(f"{side}-{i}"))

    threads = [threading.Thread(target=create, args=(side,)) for side in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    seqs = [r[0] for r in _execute(location, "SELECT seq FROM runs")]
    assert len(seqs) == 50 and len(set(seqs)) == 50
    assert [r["id"] for r in stores[0].load_runs()] == [r["id"] for r in stores[1].load_runs()]


def test_a_postgresql_url_without_psycopg_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg: ImportError
    monkeypatch.delitem(sys.modules, "app.storage.postgres", raising=False)
    with pytest.raises(StorageError, match=r"psycopg is not installed: pip install"):
        open_store("postgresql://bp:pw@db.example/runs")

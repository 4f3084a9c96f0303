"""A throwaway PostgreSQL cluster for the tests (Debian's postgresql package).

`initdb` into a temporary folder and `pg_ctl` on a free loopback port, both as the
``postgres`` OS user when the tests run as root (PostgreSQL refuses root); removed
at the end of the session. Every test gets a database of its own (`database`).
Without the binaries or psycopg the PostgreSQL tests skip, unless ``CI=true``:
then they fail, so CI never passes without having run them.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# The API and reliability suites run on PostgreSQL when this is "postgresql".
TEST_DB_VARIABLE = "BACKPROP_LIVE_TEST_DB"
FAST = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=300")


def on_postgres() -> bool:
    return os.environ.get(TEST_DB_VARIABLE, "") == "postgresql"


def unavailable() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None."""
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not shutil.which("initdb"):
        return "PostgreSQL is not installed (Debian: apt-get install postgresql)"
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root, and runuser is missing (PostgreSQL refuses root)"
    return None


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> None:
    if under_ci():
        pytest.fail(f"PostgreSQL tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A PostgreSQL server of its own, trusting loopback connections."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="backprop-live-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *command: str) -> None:
        done = subprocess.run([*self._as, *command], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}")

    def start(self) -> None:
        self._run(
            _bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--no-sync", "--no-instructions",
        )  # fmt: skip
        options = " ".join(
            [f"-p {self.port}", f"-k {self.root}", "-c listen_addresses=127.0.0.1"]
            + [f"-c {o}" for o in FAST]
        )
        log = str(self.root / "server.log")
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", log, "-w", "-o", options, "start")

    def stop(self) -> None:
        try:
            self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)

    @contextmanager
    def database(self) -> Iterator[str]:
        """A new, empty database's URL; dropped afterwards (with any connection left)."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE template0 STRATEGY FILE_COPY")
        try:
            yield self.url(name)
        finally:
            self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    reason = unavailable()
    if reason is not None:
        skip_or_fail(reason)
    cluster = Cluster()
    try:
        cluster.start()
    except BaseException:
        shutil.rmtree(cluster.root, ignore_errors=True)
        raise
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: Cluster) -> Iterator[str]:
    """A fresh PostgreSQL database for one test."""
    with postgres_cluster.database() as url:
        yield url


Row = tuple[object, ...]


def query(location: str | Path, sql: str, params: Row = ()) -> list[Row]:
    """Rows of one read on a database as another program sees it (``?`` placeholders);
    [] while its tables do not exist yet."""
    location = str(location)
    if location.startswith(("postgresql://", "postgres://")):
        import psycopg

        try:
            with psycopg.connect(location, autocommit=True) as conn:
                return list(conn.execute(sql.replace("?", "%s"), params).fetchall())
        except psycopg.errors.UndefinedTable:
            return []
    import sqlite3
    from contextlib import closing

    try:
        with closing(sqlite3.connect(location)) as db:
            return list(db.execute(sql, params).fetchall())
    except sqlite3.OperationalError:
        return []


@contextmanager
def module_database(request: pytest.FixtureRequest, folder: Path) -> Iterator[str]:
    """A database for a module-scoped fixture: a SQLite file in `folder`, or a fresh
    PostgreSQL database when BACKPROP_LIVE_TEST_DB=postgresql."""
    if not on_postgres():
        yield str(folder / "test.db")
        return
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    with cluster.database() as url:
        yield url


if __name__ == "__main__":  # `python -m tests.pg`: exit 0 when the tests can use PostgreSQL
    import sys

    missing = unavailable()
    if missing:
        sys.stderr.write(f"PostgreSQL tests skipped: {missing}\n")
    sys.exit(1 if missing else 0)

"""The Ray executor against local worker processes (issue 13, "Done when").

Usage (needs the `cluster` extra; starts its own Ray head on 127.0.0.1 and stops it):
    .venv/bin/python benchmarks/bench_cluster.py            # full (a few minutes)
    .venv/bin/python benchmarks/bench_cluster.py --quick

Reports:
1. Per-epoch overhead of a Ray run against a local worker process, spiral [8, 8],
   unpaced: epochs/s from the trainer's start to its last message (the actor's or the
   process's start-up is reported apart). Target: Ray costs at most 10 %.
2. Frame latency through a second server: a run trains on server A (its lease holder); a
   viewer of A and a viewer of B each read the SSE stream; per epoch, how much later it
   reaches B's viewer than A's (p50, p99).
3. 8 runs across 2 servers (Ray) against 8 runs on one server (local processes), on this
   machine's cores: total epochs/s until all are done.

Parts 2 and 3 keep their runs in PostgreSQL (a throwaway cluster on loopback, as the tests
start it: tests/pg.py, fsync off), both sides alike; `--db sqlite` uses SQLite files instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.runs.executor import EOF, LocalExecutor
from app.runs.models import RunCreate
from app.runs.record import prepare_run
from app.runs.worker_messages import Final, WorkerJob
from tests.support import answering

SPIRAL = {"dataset": {"kind": "spiral", "n_samples": 400}, "hidden_layers": [8, 8]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def ray_head() -> Iterator[str]:
    port = free_port()
    temp = tempfile.mkdtemp(prefix="bpl-bench-ray-", dir="/tmp")
    head = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
         f"--port={port}", "--node-ip-address=127.0.0.1", "--include-dashboard=false",
         f"--num-cpus={os.cpu_count() or 1}", f"--temp-dir={temp}", "--disable-usage-stats"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline or head.poll() is not None:
                raise RuntimeError("the Ray head did not start")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait(10)
        shutil.rmtree(temp, ignore_errors=True)


# ---- 1. per-epoch overhead --------------------------------------------------------------


def job(epochs: int) -> WorkerJob:
    run, custom = prepare_run(RunCreate.model_validate({**SPIRAL, "epochs": epochs}))
    return WorkerJob(
        config=run.config, target=epochs, checkpoint_interval=2.0, frame_interval=1 / 20,
        custom=custom,
    )  # fmt: skip


async def time_run(executor: Any, run_id: str, epochs: int) -> tuple[float, float]:
    """(start-up seconds, epochs/s from the trainer's start to its final message)."""
    t0 = time.perf_counter()
    handle = await executor.launch(run_id, job(epochs))
    t1 = time.perf_counter()
    while True:
        msg = await handle.queue.get()
        if msg is EOF or isinstance(msg, BaseException):
            raise RuntimeError(f"the run ended without its final message: {msg!r}")
        if isinstance(msg, Final):
            break
    t2 = time.perf_counter()
    await handle.join()
    handle.release()
    return t1 - t0, epochs / (t2 - t1)


def overhead(address: str, epochs: int, repeats: int) -> None:
    from app.runs.ray_executor import RayExecutor

    async def main() -> None:
        local, ray_ex = LocalExecutor(), RayExecutor(address)
        results: dict[str, list[tuple[float, float]]] = {"local": [], "ray": []}
        for i in range(repeats):
            results["local"].append(await time_run(local, f"bench-local-{i}", epochs))
            results["ray"].append(await time_run(ray_ex, f"bench-ray-{i}", epochs))
        eps = {k: statistics.median(r[1] for r in v) for k, v in results.items()}
        start = {k: statistics.median(r[0] for r in v) for k, v in results.items()}
        print(f"1. per-epoch overhead, spiral [8, 8], {epochs} epochs, median of {repeats}")
        for kind in ("local", "ray"):
            ms = start[kind] * 1000
            print(f"   {kind:5}  {eps[kind]:9.1f} epochs/s   start-up {ms:7.1f} ms")
        print(
            f"   Ray costs {100 * (eps['local'] / eps['ray'] - 1):+.1f} % per epoch (target ≤ 10 %)"
        )

    asyncio.run(main())


# ---- servers ------------------------------------------------------------------------------


@contextlib.contextmanager
def server(db: str, executor: str, address: str | None) -> Iterator[httpx.Client]:
    port = free_port()
    env = {**os.environ, "BACKPROP_LIVE_DB": db, "BACKPROP_LIVE_PORT": str(port),
           "BACKPROP_LIVE_EXECUTOR": executor, "BACKPROP_LIVE_MAX_RUNNING_RUNS": "16"}  # fmt: skip
    if address:
        env["BACKPROP_LIVE_RAY_ADDRESS"] = address
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "backprop-live"), "serve"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
    with answering(process, client, timeout=90, term=True) as answered:
        yield answered


def arrivals(client: httpx.Client, run_id: str, out: dict[int, float]) -> None:
    """Record when each epoch first reaches this viewer, until the run completes."""
    with connect_sse(client, "GET", f"/api/runs/{run_id}/events") as source:
        for sse in source.iter_sse():
            now = time.perf_counter()
            if sse.event == "epoch":
                for epoch in json.loads(sse.data)["metrics"]["epoch"]:
                    out.setdefault(epoch, now)
            elif sse.event == "status" and '"completed"' in sse.data:
                return


def latency(address: str, databases: Iterator[str], epochs: int) -> None:
    db = next(databases)
    with server(db, "ray", address) as a, server(db, "ray", address) as b:
        # Started first: both viewers then read a running run (B follows it at once).
        run_id = a.post("/api/runs", json={**SPIRAL, "epochs": epochs,
                                           "max_epochs_per_second": 20}).json()["id"]  # fmt: skip
        seen_a: dict[int, float] = {}
        seen_b: dict[int, float] = {}
        threads = [
            threading.Thread(target=arrivals, args=(a, run_id, seen_a)),
            threading.Thread(target=arrivals, args=(b, run_id, seen_b)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(epochs / 20 + 120)
    delays = sorted((seen_b[e] - seen_a[e]) * 1000 for e in seen_a if e in seen_b)
    p50 = delays[len(delays) // 2]
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    print(f"2. frame latency through a second server ({len(delays)} epochs at 20/s):")
    print(f"   B's viewer later than A's: p50 {p50:.1f} ms, p99 {p99:.1f} ms")


def eight_runs(address: str, databases: Iterator[str], epochs: int) -> None:
    body = {**SPIRAL, "epochs": epochs}

    def wait_all(clients: list[httpx.Client], ids: list[list[str]]) -> None:
        for client, mine in zip(clients, ids, strict=True):
            for run_id in mine:
                while client.get(f"/api/runs/{run_id}").json()["status"] == "running":
                    time.sleep(0.2)

    with server(next(databases), "local", None) as one:
        t0 = time.perf_counter()
        ids = [one.post("/api/runs", json=body).json()["id"] for _ in range(8)]
        wait_all([one], [ids])
        local_eps = 8 * epochs / (time.perf_counter() - t0)
    db = next(databases)
    with server(db, "ray", address) as a, server(db, "ray", address) as b:
        t0 = time.perf_counter()
        ids_a = [a.post("/api/runs", json=body).json()["id"] for _ in range(4)]
        ids_b = [b.post("/api/runs", json=body).json()["id"] for _ in range(4)]
        wait_all([a, b], [ids_a, ids_b])
        ray_eps = 8 * epochs / (time.perf_counter() - t0)
    print(f"3. 8 runs of {epochs} epochs on {os.cpu_count()} cores, total epochs/s:")
    print(f"   one server, local processes: {local_eps:9.1f}")
    print(f"   two servers, Ray:            {ray_eps:9.1f}  ({ray_eps / local_eps:.2f}x)")


@contextlib.contextmanager
def databases(kind: str) -> Iterator[Iterator[str]]:
    """Fresh databases, one per `next`: PostgreSQL databases of one throwaway cluster, or
    SQLite files in a temporary folder."""
    with contextlib.ExitStack() as stack:
        if kind == "sqlite":
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            yield (str(tmp / f"bench-{i}.db") for i in range(1000))
            return
        from tests.pg import Cluster

        cluster = Cluster()
        cluster.start()
        stack.callback(cluster.stop)
        yield (stack.enter_context(cluster.database()) for _ in range(1000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    args = parser.parse_args()
    epochs, repeats = (500, 1) if args.quick else (3000, 3)
    with ray_head() as address, databases(args.db) as dbs:
        import ray

        ray.init(address=address, namespace="backprop-live", log_to_driver=False)
        print(f"(runs of parts 2 and 3 stored in {args.db})")
        overhead(address, epochs, repeats)
        latency(address, dbs, 100 if args.quick else 300)
        eight_runs(address, dbs, epochs // 2 if args.quick else epochs)
        ray.shutdown()


if __name__ == "__main__":
    main()

# ruff: noqa: RUF001, RUF002 -- output uses the real times sign
"""Sweep benchmark: a 16-run grid on 2 training slots against the same runs one after
another, and how long the sweep page of a 64-run sweep takes to render.

1. spiral, [8, 8], batch 10, 4 learning rates × 4 seeds, `--epochs` each (default
   2,000): `POST /api/sweeps` on a server with 2 training slots, timed until every run
   has completed; then the same 16 runs created one at a time with `POST /api/runs`,
   each waited for before the next. Target: the sweep ≥ 1.8× faster (2 cores).
2. a 64-run sweep (8 learning rates × 8 seeds, 300 epochs each), finished: `GET
   /sweeps/{id}` timed `--repeats` times over loopback (server time plus a loopback
   round trip); the median and the largest are reported.

The status of runs is polled every 50 ms (the benchmark's own cost, outside the
server), so times are good to ~0.1 s.

    .venv/bin/python benchmarks/bench_sweep.py [--epochs 2000] [--repeats 9]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serving import server

BASE = {"dataset": {"kind": "spiral"}, "hidden_layers": [8, 8], "batch_size": 10}
LEARNING_RATES = [0.01, 0.03, 0.1, 0.3]
SEEDS = [0, 1, 2, 3]


def wait_all_done(api: httpx.Client, run_ids: list[str], timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    pending = set(run_ids)
    while pending:
        for run_id in list(pending):
            status = api.get(f"/api/runs/{run_id}").json()["status"]
            if status in ("completed", "failed", "diverged"):
                if status != "completed":
                    print(f"  note: run {run_id} ended {status}")
                pending.discard(run_id)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} runs still training")
        time.sleep(0.05)


def sweep_time(api: httpx.Client, epochs: int) -> float:
    body = {
        "name": "bench grid",
        "base": {**BASE, "epochs": epochs},
        "grid": {"learning_rate": LEARNING_RATES, "seed": SEEDS},
    }
    start = time.perf_counter()
    response = api.post("/api/sweeps", json=body)
    response.raise_for_status()
    wait_all_done(api, [r["id"] for r in response.json()["runs"]])
    return time.perf_counter() - start


def sequential_time(api: httpx.Client, epochs: int) -> float:
    start = time.perf_counter()
    for lr in LEARNING_RATES:
        for seed in SEEDS:
            body = {**BASE, "epochs": epochs, "learning_rate": lr, "seed": seed}
            response = api.post("/api/runs", json=body)
            response.raise_for_status()
            wait_all_done(api, [response.json()["id"]])
    return time.perf_counter() - start


def page_times(api: httpx.Client, repeats: int) -> tuple[float, float, int]:
    body = {
        "base": {**BASE, "epochs": 300},
        "grid": {"learning_rate": [0.005 * 2**i for i in range(8)], "seed": list(range(8))},
    }
    response = api.post("/api/sweeps", json=body)
    response.raise_for_status()
    sweep = response.json()
    wait_all_done(api, [r["id"] for r in sweep["runs"]])
    times, size = [], 0
    for _ in range(repeats + 1):  # the first warms the hubs' metric histories
        start = time.perf_counter()
        page = api.get(f"/sweeps/{sweep['id']}")
        times.append(time.perf_counter() - start)
        page.raise_for_status()
        size = len(page.content)
    return statistics.median(times[1:]), max(times[1:]), size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        settings = {"max_running_runs": "2", "max_stored_runs": "200"}
        with server(Path(tmp) / "bench.db", **settings) as (url, _):
            api = httpx.Client(base_url=url, timeout=120)
            parallel = sweep_time(api, args.epochs)
            sequential = sequential_time(api, args.epochs)
            print(f"16 runs × {args.epochs:,} epochs (spiral [8, 8], batch 10), 2 slots:")
            print(f"  sweep           {parallel:7.2f} s")
            print(f"  one at a time   {sequential:7.2f} s")
            print(f"  speed-up        {sequential / parallel:7.2f}×   (target ≥ 1.8×)")
            median, worst, size = page_times(api, args.repeats)
            print(f"GET /sweeps/{{id}} with 64 finished runs of 300 epochs ({size:,} bytes):")
            print(f"  median {1000 * median:.1f} ms, max {1000 * worst:.1f} ms "
                  f"over {args.repeats} requests")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

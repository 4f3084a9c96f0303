"""Serving benchmark: what SSE subscribers and concurrent runs cost the trainer and the server.

Starts ``uvicorn app.main:app`` in a subprocess on a loopback socket with a
temporary database, then measures, over fixed windows:

1. one fast run (spiral, [8, 8], batch 10) with 0, 1, 10 and 100 SSE
   subscribers: training epochs/s relative to 0 subscribers, `epoch` frames/s
   delivered to all subscribers together, and /api/health latency p50/p99;
2. 1, 2 and 4 runs training at once: total epochs/s relative to one run, and
   /api/health latency while they train.

Each case has two windows: speed, frames and server CPU first, with no probe;
then the latency probe (see `measure`).

The subscribers live in a separate process (asyncio + httpx, reading every
frame), so that their parsing does not compete with the latency probe; it
does compete with the trainer for the machine's cores. "server CPU" is the
server process's own CPU use (workers excluded): the cost of encoding and
sending frames, which is robust to a busy machine where epochs/s is not.
Targets (DESIGN/issue 3): 100 subscribers cost <= 10 % of training speed;
2 runs >= 1.8x one; health p99 <= 5 ms while 4 runs train.

    .venv/bin/python benchmarks/bench_serving.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RUN = {
    "dataset": {"kind": "spiral"},
    "hidden_layers": [8, 8],
    "batch_size": 10,
    "epochs": 10_000_000,
    "start": False,
}
SUBSCRIBER_COUNTS = (0, 1, 10, 100)
RUN_COUNTS = (1, 2, 4)


@contextmanager
def server(db: Path, **settings: str) -> Any:
    """`uvicorn app.main:app` on a free loopback port with a database at `db` and
    BACKPROP_LIVE_<NAME> = value for every `name=value` in `settings`; yields
    (url, pid). All subscribers of a benchmark come from one address, so the
    per-client stream limit is raised unless `settings` says otherwise."""
    # A port, not an inherited socket (`uvicorn --fd`): uvicorn wraps an fd as
    # AF_UNIX, so asyncio leaves Nagle on and every response waits ~40 ms for an ACK.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--timeout-graceful-shutdown", "2"],
        cwd=ROOT,
        env={
            **os.environ,
            "BACKPROP_LIVE_DB": str(db),
            "BACKPROP_LIVE_MAX_STREAMS_PER_CLIENT": "1000",
            **{f"BACKPROP_LIVE_{k.upper()}": v for k, v in settings.items()},
        },
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}")
            try:
                if httpx.get(url + "/api/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start within 60 s")
            time.sleep(0.1)
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(20)


# ---- subscribers (own process) -------------------------------------------------------------


async def _subscribe(url: str, run_id: str, ready: asyncio.Event, counts: list[int], i: int,
                     started: list[int]) -> None:  # fmt: skip
    async with (
        httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(60, read=None)) as client,
        client.stream("GET", f"/api/runs/{run_id}/events") as response,
    ):
        buffer = b""
        async for chunk in response.aiter_bytes():
            buffer += chunk
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                if event.startswith(b"event: snapshot"):
                    started[0] += 1
                    if started[0] == len(counts):
                        ready.set()
                elif event.startswith(b"event: epoch"):
                    counts[i] += 1


def subscriber_process(url: str, run_id: str, n: int, conn: Any) -> None:
    """Open n streams, report when all have their snapshot, then count frames on demand."""

    async def main() -> None:
        counts = [0] * n
        started = [0]
        ready = asyncio.Event()
        tasks = [
            asyncio.create_task(_subscribe(url, run_id, ready, counts, i, started))
            for i in range(n)
        ]
        await asyncio.wait_for(ready.wait(), 120)
        conn.send("ready")
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command == "count":
                conn.send(sum(counts))
            else:
                break
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


# ---- measurements --------------------------------------------------------------------------


@dataclass
class Window:
    epochs_per_s: float
    health_p50_ms: float
    health_p99_ms: float
    server_cpu: float  # CPU seconds per second of the server process (workers excluded)
    frames_per_s: float | None = None


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def epochs_of(client: httpx.Client, run_ids: list[str]) -> int:
    return sum(client.get(f"/api/runs/{rid}").json()["epoch"] for rid in run_ids)


@dataclass
class Probe:
    elapsed: float
    p50_ms: float
    p99_ms: float


def health_probe(client: httpx.Client, t0: float, seconds: float) -> Probe:
    """GET /api/health about every 5 ms until `seconds` after `t0` (perf_counter)."""
    latencies: list[float] = []
    while time.perf_counter() - t0 < seconds:
        start = time.perf_counter()
        client.get("/api/health")
        latencies.append(time.perf_counter() - start)
        time.sleep(0.005)  # a probe, not a load generator
    latencies.sort()
    return Probe(
        elapsed=time.perf_counter() - t0,
        p50_ms=1000 * statistics.median(latencies),
        p99_ms=1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    )


def measure(client: httpx.Client, pid: int, run_ids: list[str], seconds: float,
            count_frames: Any = None) -> Window:  # fmt: skip
    """Two windows of `seconds` while the runs train: first training speed, frames and
    server CPU with nothing else asking; then /api/health latency, probed every ~5 ms.
    Apart, because the probe is a client on the same two cores: timed together, its own
    CPU (and the server's answers to it) came out of the runs' share."""
    time.sleep(1.0)  # warm-up: workers started, first frames out
    frames0 = count_frames() if count_frames else 0
    cpu0 = cpu_seconds(pid)
    epochs0, t0 = epochs_of(client, run_ids), time.perf_counter()
    time.sleep(seconds)
    epochs = epochs_of(client, run_ids) - epochs0
    elapsed = time.perf_counter() - t0
    cpu = (cpu_seconds(pid) - cpu0) / elapsed
    frames = (count_frames() - frames0) / elapsed if count_frames else None
    probe = health_probe(client, time.perf_counter(), seconds)
    return Window(
        epochs_per_s=epochs / elapsed,
        health_p50_ms=probe.p50_ms,
        health_p99_ms=probe.p99_ms,
        server_cpu=cpu,
        frames_per_s=frames,
    )


def create(client: httpx.Client) -> str:
    response = client.post("/api/runs", json=RUN)
    response.raise_for_status()
    return str(response.json()["id"])


def bench_subscribers(
    url: str, pid: int, client: httpx.Client, seconds: float
) -> list[tuple[int, Window]]:
    results = []
    ctx = multiprocessing.get_context("spawn")
    for n in SUBSCRIBER_COUNTS:
        run_id = create(client)
        process = None
        parent = None
        count = None
        if n:
            parent, child = ctx.Pipe()
            process = ctx.Process(target=subscriber_process, args=(url, run_id, n, child))
            process.start()
            if not parent.poll(120) or parent.recv() != "ready":
                raise RuntimeError("subscribers did not connect")

            def count(parent: Any = parent) -> int:
                parent.send("count")
                return int(parent.recv())

        client.post(f"/api/runs/{run_id}/start").raise_for_status()
        results.append((n, measure(client, pid, [run_id], seconds, count)))
        client.post(f"/api/runs/{run_id}/stop")
        if process is not None and parent is not None:
            parent.send("stop")
            process.join(30)
        client.delete(f"/api/runs/{run_id}")
    return results


def bench_runs(pid: int, client: httpx.Client, seconds: float) -> list[tuple[int, Window]]:
    results = []
    for k in RUN_COUNTS:
        run_ids = [create(client) for _ in range(k)]
        for rid in run_ids:
            client.post(f"/api/runs/{rid}/start").raise_for_status()
        results.append((k, measure(client, pid, run_ids, seconds)))
        for rid in run_ids:
            client.delete(f"/api/runs/{rid}")
    return results


def table(subs: list[tuple[int, Window]], runs: list[tuple[int, Window]]) -> str:
    base = subs[0][1].epochs_per_s
    lines = [
        "| SSE subscribers | epochs/s | vs 0 subscribers | frames/s delivered (all) "
        "| server CPU | /api/health p50 ms | p99 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, w in subs:
        frames = "—" if w.frames_per_s is None else f"{w.frames_per_s:.0f}"
        lines.append(
            f"| {n} | {w.epochs_per_s:.0f} | {w.epochs_per_s / base:.2f}x | {frames} "
            f"| {100 * w.server_cpu:.0f} % | {w.health_p50_ms:.2f} | {w.health_p99_ms:.2f} |"
        )
    one = runs[0][1].epochs_per_s
    lines += [
        "",
        "| runs training | total epochs/s | vs 1 run | server CPU | /api/health p50 ms | p99 ms |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for k, w in runs:
        lines.append(
            f"| {k} | {w.epochs_per_s:.0f} | {w.epochs_per_s / one:.2f}x "
            f"| {100 * w.server_cpu:.0f} % | {w.health_p50_ms:.2f} | {w.health_p99_ms:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each window")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        server(Path(tmp) / "bench.db") as (url, pid),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        subs = bench_subscribers(url, pid, client, args.seconds)
        runs = bench_runs(pid, client, args.seconds)
    load = os.getloadavg()[0]
    sys.stdout.write(
        f"backprop-live serving benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {args.seconds:g} s windows, "
        f"load average {load:.1f} at the end\n\n"
    )
    sys.stdout.write(table(subs, runs) + "\n")


if __name__ == "__main__":
    main()

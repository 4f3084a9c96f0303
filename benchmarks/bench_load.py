"""Load scenario: 200 SSE viewers of one run while 8 runs train at once.

Starts ``uvicorn app.main:app`` in a subprocess on a loopback port (temporary
database; the running-runs and streams-per-client limits raised for the
scenario through BACKPROP_LIVE_* variables), then measures two windows of the
same length:

1. no viewers: 8 runs (spiral, [8, 8], batch 10, as fast as possible) train;
2. 200 viewers: the same, with 200 SSE subscribers on the first run's
   ``/api/runs/{id}/events`` (weights in every frame, ``max_fps`` 20), in a
   separate process (asyncio + httpx, every frame parsed with orjson).

Reported: the 8 runs' total epochs/s and its ratio to the no-viewer window,
``/api/health`` latency p50/p99 (a probe every ~5 ms on a keep-alive
connection), `epoch` frames/s per viewer, the CPU use of the server process and of
the viewers' process, and the exactly-once check: after
the window the viewed run is stopped; every viewer must then hold the metrics
of epochs 1..final exactly once, in order, before its `stopped` status event.

    .venv/bin/python benchmarks/bench_load.py [--seconds 10] [--viewers 200] [--runs 8]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serving import cpu_seconds, epochs_of, health_probe
from bench_serving import server as serving_server

RUN = {
    "dataset": {"kind": "spiral"},
    "hidden_layers": [8, 8],
    "batch_size": 10,
    "epochs": 10_000_000,
    "start": False,
}
FINISH_TIMEOUT = 60.0  # seconds for every viewer to see the viewed run's `stopped`


@contextmanager
def server(db: Path, runs: int, viewers: int) -> Iterator[tuple[str, int]]:
    with serving_server(
        db, max_running_runs=str(runs), max_streams_per_client=str(viewers + 10)
    ) as (url, pid):
        yield url, pid


# ---- viewers (own process) -----------------------------------------------------------------


@dataclass
class Viewer:
    epochs: list[int] = field(default_factory=list)
    frames: int = 0
    snapshot: bool = False
    final_status: str | None = None


async def _view(url: str, run_id: str, viewer: Viewer, connected: asyncio.Event,
                counter: list[int], total: int) -> None:  # fmt: skip
    async with (
        httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(60, read=None)) as client,
        client.stream("GET", f"/api/runs/{run_id}/events") as response,
    ):
        response.raise_for_status()
        buffer = b""
        async for chunk in response.aiter_bytes():
            buffer += chunk
            *events, buffer = buffer.split(b"\n\n")
            for raw in events:
                lines = raw.split(b"\n")
                name = lines[0].removeprefix(b"event: ")
                data = next((ln[6:] for ln in lines if ln.startswith(b"data: ")), None)
                if data is None:
                    continue  # a ping
                body = orjson.loads(data)
                if name == b"snapshot":
                    viewer.snapshot = True
                    viewer.epochs.extend(body["metrics"]["epoch"])
                    counter[0] += 1
                    if counter[0] == total:
                        connected.set()
                elif name == b"epoch":
                    viewer.frames += 1
                    viewer.epochs.extend(body["metrics"]["epoch"])
                elif name == b"status" and body["status"] in ("stopped", "completed"):
                    viewer.final_status = body["status"]
                    return


def viewer_process(url: str, run_id: str, n: int, conn: Any) -> None:
    """Open n streams; report when all have their snapshot; answer `count` and `finish`."""

    async def main() -> None:
        viewers = [Viewer() for _ in range(n)]
        counter = [0]
        connected = asyncio.Event()
        tasks = [asyncio.create_task(_view(url, run_id, v, connected, counter, n)) for v in viewers]
        await asyncio.wait_for(connected.wait(), 120)
        conn.send("ready")
        loop = asyncio.get_running_loop()
        while True:
            command, *args = await loop.run_in_executor(None, conn.recv)
            if command == "count":
                conn.send([v.frames for v in viewers])
            elif command == "finish":
                (final_epoch,) = args
                _, pending = await asyncio.wait(tasks, timeout=FINISH_TIMEOUT)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                expected = list(range(1, final_epoch + 1))
                conn.send(
                    [
                        (
                            v.epochs == expected and v.final_status is not None,
                            len(v.epochs),
                            len(set(v.epochs)),
                            v.final_status,
                        )
                        for v in viewers
                    ]
                )
                return

    asyncio.run(main())


# ---- measurements --------------------------------------------------------------------------


@dataclass
class Window:
    epochs_per_s: float
    health_p50_ms: float
    health_p99_ms: float
    server_cpu: float  # CPU seconds per second of the server process (workers excluded)
    viewers_cpu: float | None = None  # ... of the viewers' process
    frames_per_viewer: list[float] | None = None


def measure(client: httpx.Client, run_ids: list[str], seconds: float, frames: Any,
            server_pid: int, viewers_pid: int | None) -> Window:  # fmt: skip
    time.sleep(1.0)  # warm-up: workers started, first frames out
    frames0 = frames() if frames else None
    server0 = cpu_seconds(server_pid)
    viewers0 = cpu_seconds(viewers_pid) if viewers_pid else 0.0
    epochs0, t0 = epochs_of(client, run_ids), time.perf_counter()
    probe = health_probe(client, t0, seconds)
    elapsed = probe.elapsed
    epochs = epochs_of(client, run_ids) - epochs0
    server_cpu = (cpu_seconds(server_pid) - server0) / elapsed
    viewers_cpu = (cpu_seconds(viewers_pid) - viewers0) / elapsed if viewers_pid else None
    per_viewer = None
    if frames0 is not None:
        per_viewer = [(b - a) / elapsed for a, b in zip(frames0, frames(), strict=True)]
    return Window(
        epochs_per_s=epochs / elapsed,
        health_p50_ms=probe.p50_ms,
        health_p99_ms=probe.p99_ms,
        server_cpu=server_cpu,
        viewers_cpu=viewers_cpu,
        frames_per_viewer=per_viewer,
    )


def create_runs(client: httpx.Client, k: int) -> list[str]:
    ids = []
    for _ in range(k):
        response = client.post("/api/runs", json=RUN)
        response.raise_for_status()
        ids.append(str(response.json()["id"]))
    return ids


def scenario(url: str, pid: int, client: httpx.Client, args: argparse.Namespace) -> dict[str, Any]:
    # 1. no viewers
    run_ids = create_runs(client, args.runs)
    for rid in run_ids:
        client.post(f"/api/runs/{rid}/start").raise_for_status()
    quiet = measure(client, run_ids, args.seconds, None, pid, None)
    for rid in run_ids:
        client.delete(f"/api/runs/{rid}")

    # 2. viewers on the first run
    run_ids = create_runs(client, args.runs)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=viewer_process, args=(url, run_ids[0], args.viewers, child))
    process.start()
    if not parent.poll(120) or parent.recv() != "ready":
        raise RuntimeError("viewers did not connect")

    def frames() -> list[int]:
        parent.send(("count",))
        counts: list[int] = parent.recv()
        return counts

    for rid in run_ids:
        client.post(f"/api/runs/{rid}/start").raise_for_status()
    viewed = measure(client, run_ids, args.seconds, frames, pid, process.pid)
    final_epoch = client.post(f"/api/runs/{run_ids[0]}/stop").json()["epoch"]
    parent.send(("finish", final_epoch))
    if not parent.poll(FINISH_TIMEOUT + 30):
        raise RuntimeError("viewers did not report")
    results = parent.recv()
    process.join(30)
    for rid in run_ids:
        client.delete(f"/api/runs/{rid}")
    return {"quiet": quiet, "viewed": viewed, "final_epoch": final_epoch, "viewers": results}


def report(result: dict[str, Any], args: argparse.Namespace) -> str:
    quiet: Window = result["quiet"]
    viewed: Window = result["viewed"]
    per_viewer = viewed.frames_per_viewer or [0.0]
    exact = sum(1 for ok, *_ in result["viewers"] if ok)
    lines = [
        f"| viewers of run 1 | {args.runs} runs: total epochs/s | vs no viewers "
        "| /api/health p50 ms | p99 ms | frames/s per viewer (mean, min-max) "
        "| viewers with every epoch exactly once | server CPU | viewers' CPU |",
        "|---:|---:|---:|---:|---:|---|---|---:|---:|",
        f"| 0 | {quiet.epochs_per_s:.0f} | 1.00x | {quiet.health_p50_ms:.2f} "
        f"| {quiet.health_p99_ms:.2f} | — | — | {100 * quiet.server_cpu:.0f} % | — |",
        f"| {args.viewers} | {viewed.epochs_per_s:.0f} "
        f"| {viewed.epochs_per_s / quiet.epochs_per_s:.2f}x | {viewed.health_p50_ms:.2f} "
        f"| {viewed.health_p99_ms:.2f} | {statistics.mean(per_viewer):.1f} "
        f"({min(per_viewer):.1f}-{max(per_viewer):.1f}) "
        f"| {exact}/{len(result['viewers'])} (epochs 1-{result['final_epoch']}) "
        f"| {100 * viewed.server_cpu:.0f} % | {100 * (viewed.viewers_cpu or 0):.0f} % |",
    ]
    bad = [r for r in result["viewers"] if not r[0]]
    if bad:
        lines.append("")
        lines.append(f"viewers that failed the check (ok, epochs received, distinct, final "
                     f"status), first 5: {bad[:5]}")  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each window")
    parser.add_argument("--viewers", type=int, default=200)
    parser.add_argument("--runs", type=int, default=8)
    args = parser.parse_args()
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as tmp,
        server(Path(tmp) / "load.db", args.runs, args.viewers) as (url, pid),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        result = scenario(url, pid, client, args)
    load = os.getloadavg()[0]
    sys.stdout.write(
        f"backprop-live load scenario — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {args.seconds:g} s windows, "
        f"{time.perf_counter() - started:.0f} s in all, load average {load:.1f} at the end\n\n"
    )
    sys.stdout.write(report(result, args) + "\n")
    return 0 if all(ok for ok, *_ in result["viewers"]) else 1


if __name__ == "__main__":
    sys.exit(main())

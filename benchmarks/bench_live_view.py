"""Live-view benchmark: what one live view (/runs/{id}) costs a viewer's network and the run.

Starts ``uvicorn app.main:app`` in a subprocess (bench_serving's ``server``) and
measures, on a running spiral [8, 8] run (batch 10, no speed limit):

1. Chromium (Debian, /usr/bin/chromium, via Playwright) on the live view:
   bytes per second the page receives (CDP ``Network.dataReceived``
   encodedDataLength, every request of the page, after a 2 s warm-up), SSE
   messages per second (CDP ``Network.eventSourceMessageReceived``), page
   updates per second (``htmx:sseMessage`` events counted in the page, and
   changes of #epoch seen by requestAnimationFrame), and the run's epochs/s
   with the page open vs. with no page: windows alternate (none, page, none,
   page, ...) on the same run, medians of ``--windows`` each.
2. 200 viewers of the HTML stream /ui/runs/{id}/stream, headless (httpx +
   asyncio in a separate process): total bytes/s, frames per viewer per
   second, server CPU, and epochs/s vs. none.
3. Bytes per frame by part (the id of each out-of-band element) for one
   viewer of the stream, for spiral [8, 8] and two big nets (teacher data,
   64-128-64-10 and 784-512-512-10).

    .venv/bin/python benchmarks/bench_live_view.py [--seconds 4] [--windows 3]
        [--json out.json] [--compare before.json]

``--json`` saves the numbers, ``--compare`` prints them next to an earlier run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serving import cpu_seconds, server

SPIRAL = {
    "dataset": {"kind": "spiral"},
    "hidden_layers": [8, 8],
    "batch_size": 10,
    "epochs": 10_000_000,
    "start": False,
}


def teacher(inputs: int, hidden: list[int], outputs: int) -> dict[str, Any]:
    return {
        "dataset": {
            "kind": "teacher",
            "teacher_layers": [inputs, 16, outputs],
            "n_samples": 1000,
        },
        "hidden_layers": hidden,
        "batch_size": 100,
        "epochs": 10_000_000,
        "start": False,
    }


BIG_NETS = {
    "64-128-64-10": teacher(64, [128, 64], 10),
    "784-512-512-10": teacher(784, [512, 512], 10),
}
VIEWERS = 200
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Counts page updates without touching the page's own scripts (bypass_csp lets it run).
PAGE_COUNTER = """
window.__sse = 0; window.__epochChanges = 0;
document.addEventListener('htmx:sseMessage', function () { window.__sse++; });
(function () {
  var last = null;
  function tick() {
    var el = document.getElementById('epoch');
    var text = el ? el.textContent : null;
    if (text !== last) { window.__epochChanges++; last = text; }
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
})();
"""


def descendants_cpu(name: str) -> float:
    """CPU seconds of this process's descendants whose name contains `name` (Linux /proc)."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        pid = int(text.split(" ", 1)[0])
        names[pid] = text[text.index("(") + 1 : text.rindex(")")]
        parents[pid] = int(text.rsplit(")", 1)[1].split()[1])
    total = 0.0
    for pid in names:
        p = pid
        while p > 1 and p != os.getpid():
            p = parents.get(p, 0)
        if p == os.getpid() and name in names[pid]:
            try:
                total += cpu_seconds(pid)
            except OSError:
                continue
    return total


def create(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/api/runs", json=body)
    response.raise_for_status()
    run_id = str(response.json()["id"])
    client.post(f"/api/runs/{run_id}/start").raise_for_status()
    return run_id


def epoch_of(client: httpx.Client, run_id: str) -> int:
    return int(client.get(f"/api/runs/{run_id}").json()["epoch"])


def speed(client: httpx.Client, run_id: str, seconds: float, wait: Any = time.sleep) -> float:
    """Epochs/s of the run over `seconds`; `wait` sleeps (a page's wait pumps its events)."""
    e0, t0 = epoch_of(client, run_id), time.perf_counter()
    wait(seconds)
    return (epoch_of(client, run_id) - e0) / (time.perf_counter() - t0)


# ---- 1. Chromium ---------------------------------------------------------------------------


def browser_case(url: str, pid: int, client: httpx.Client, seconds: float,
                 windows: int) -> dict[str, float]:  # fmt: skip
    from playwright.sync_api import sync_playwright

    run_id = create(client, SPIRAL)
    time.sleep(1.0)
    none: list[float] = []
    open_: list[float] = []
    rates: dict[str, list[float]] = {
        k: [] for k in ("bytes", "messages", "sse", "epoch", "browser_cpu", "server_cpu")
    }
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for _ in range(windows):
            none.append(speed(client, run_id, seconds))
            context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
            context.add_init_script(PAGE_COUNTER)
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            got = {"bytes": 0, "messages": 0}

            def on_data(ev: dict[str, Any], got: dict[str, int] = got) -> None:
                got["bytes"] += int(ev.get("encodedDataLength") or 0)

            def on_message(ev: dict[str, Any], got: dict[str, int] = got) -> None:
                got["messages"] += 1

            cdp.on("Network.dataReceived", on_data)
            cdp.on("Network.eventSourceMessageReceived", on_message)
            page.goto(f"{url}/runs/{run_id}")
            page.wait_for_timeout(2000)  # warm-up: snapshot in, steady frames
            b0, m0 = got["bytes"], got["messages"]
            s0, c0 = page.evaluate("[window.__sse, window.__epochChanges]")
            cpu0, server0 = descendants_cpu("chrom"), cpu_seconds(pid)
            t0 = time.perf_counter()

            def pump(s: float, page: Any = page) -> None:
                page.wait_for_timeout(s * 1000)  # the page's events are handled while it waits

            open_.append(speed(client, run_id, seconds, pump))
            s1, c1 = page.evaluate("[window.__sse, window.__epochChanges]")
            elapsed = time.perf_counter() - t0
            rates["browser_cpu"].append((descendants_cpu("chrom") - cpu0) / elapsed)
            rates["server_cpu"].append((cpu_seconds(pid) - server0) / elapsed)
            rates["bytes"].append((got["bytes"] - b0) / elapsed)
            rates["messages"].append((got["messages"] - m0) / elapsed)
            rates["sse"].append((s1 - s0) / elapsed)
            rates["epoch"].append((c1 - c0) / elapsed)
            context.close()
        browser.close()
    client.delete(f"/api/runs/{run_id}")
    base = statistics.median(none)
    watched = statistics.median(open_)
    return {
        "epochs_per_s_no_page": base,
        "epochs_per_s_page_open": watched,
        "page_open_vs_none": watched / base if base else 0.0,
        "page_bytes_per_s": statistics.median(rates["bytes"]),
        "page_sse_messages_per_s": statistics.median(rates["messages"]),
        "page_updates_per_s": statistics.median(rates["sse"]),
        "page_epoch_changes_per_s": statistics.median(rates["epoch"]),
        "browser_cpu": statistics.median(rates["browser_cpu"]),
        "server_cpu_page_open": statistics.median(rates["server_cpu"]),
    }


# ---- 2. and 3. headless viewers ------------------------------------------------------------

OOB_ID = re.compile(
    rb'<(?:div|g|svg|span|path)[^>]*?(?:\bid="([^"]+)"[^>]*?hx-swap-oob|hx-swap-oob="\w+:#([^"]+)")'
)


def parts_of(message: bytes) -> Counter[str]:
    """Bytes of one SSE message by the id of its out-of-band elements (each runs to the next)."""
    found = list(OOB_ID.finditer(message))
    sizes: Counter[str] = Counter()
    if not found:
        sizes["(other)"] += len(message)
        return sizes
    sizes["(other)"] += found[0].start()
    for match, nxt in zip(found, [*found[1:], None], strict=True):
        end = nxt.start() if nxt is not None else len(message)
        sizes[(match.group(1) or match.group(2)).decode()] += end - match.start()
    return sizes


async def _view(url: str, run_id: str, stats: dict[str, Any], started: list[int], n: int,
                ready: asyncio.Event) -> None:  # fmt: skip
    async with (
        httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(60, read=None)) as client,
        client.stream("GET", f"/ui/runs/{run_id}/stream") as response,
    ):
        buffer = b""
        async for chunk in response.aiter_raw():
            stats["bytes"] += len(chunk)
            buffer += chunk
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                if b"event: snapshot" in event:
                    started[0] += 1
                    if started[0] == n:
                        ready.set()
                elif b"event: frame" in event:
                    stats["frames"] += 1
                    if stats["parts"] is not None:
                        stats["parts"].update(parts_of(event))


def viewer_process(url: str, run_id: str, n: int, conn: Any) -> None:
    """Open n streams; on "count" report (bytes, frames, bytes by part of viewer 0)."""

    async def main() -> None:
        stats = [
            {"bytes": 0, "frames": 0, "parts": Counter() if i == 0 else None} for i in range(n)
        ]
        started = [0]
        ready = asyncio.Event()
        tasks = [
            asyncio.create_task(_view(url, run_id, stats[i], started, n, ready)) for i in range(n)
        ]
        await asyncio.wait_for(ready.wait(), 180)
        conn.send("ready")
        loop = asyncio.get_running_loop()
        while (await loop.run_in_executor(None, conn.recv)) == "count":
            conn.send(
                (
                    sum(s["bytes"] for s in stats),
                    sum(s["frames"] for s in stats),
                    dict(stats[0]["parts"]),
                    stats[0]["frames"],
                )
            )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def viewers_case(url: str, pid: int, client: httpx.Client, body: dict[str, Any], n: int,
                 seconds: float) -> dict[str, Any]:  # fmt: skip
    run_id = create(client, body)
    time.sleep(1.0)
    base = speed(client, run_id, seconds) if n > 1 else 0.0
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=viewer_process, args=(url, run_id, n, child))
    process.start()
    if not parent.poll(180) or parent.recv() != "ready":
        raise RuntimeError("viewers did not connect")
    time.sleep(1.0)
    parent.send("count")
    b0, f0, p0, g0 = parent.recv()
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    watched = speed(client, run_id, seconds)
    parent.send("count")
    b1, f1, p1, g1 = parent.recv()
    elapsed = time.perf_counter() - t0
    cpu = (cpu_seconds(pid) - cpu0) / elapsed
    parent.send("stop")
    process.join(30)
    client.delete(f"/api/runs/{run_id}")
    frames0 = max(1, g1 - g0)
    parts = {k: (v - p0.get(k, 0)) / frames0 for k, v in p1.items()}
    return {
        "viewers": n,
        "bytes_per_s_total": (b1 - b0) / elapsed,
        "bytes_per_s_per_viewer": (b1 - b0) / elapsed / n,
        "frames_per_s_per_viewer": (f1 - f0) / elapsed / n,
        "bytes_per_frame": (b1 - b0) / max(1, f1 - f0),
        "server_cpu": cpu,
        "epochs_per_s": watched,
        "epochs_per_s_no_viewers": base,
        "parts_bytes_per_frame": dict(sorted(parts.items(), key=lambda kv: -kv[1])),
    }


# ---- report --------------------------------------------------------------------------------

ROWS = [
    ("browser", "page_bytes_per_s", "Chromium: KB/s received", 1e-3, ".1f"),
    ("browser", "page_sse_messages_per_s", "Chromium: SSE messages/s", 1, ".1f"),
    ("browser", "page_updates_per_s", "Chromium: page updates/s (htmx:sseMessage)", 1, ".1f"),
    ("browser", "page_epoch_changes_per_s", "Chromium: #epoch changes/s (rAF)", 1, ".1f"),
    ("browser", "browser_cpu", "Chromium CPU (1 = one core)", 1, ".2f"),
    ("browser", "server_cpu_page_open", "server CPU, page open (1 = one core)", 1, ".2f"),
    ("browser", "epochs_per_s_no_page", "epochs/s, no page", 1, ".0f"),
    ("browser", "epochs_per_s_page_open", "epochs/s, page open", 1, ".0f"),
    ("browser", "page_open_vs_none", "training with page / without", 1, ".2f"),
    ("one", "bytes_per_frame", "1 viewer: KB per frame", 1e-3, ".1f"),
    ("one", "bytes_per_s_per_viewer", "1 viewer: KB/s", 1e-3, ".1f"),
    ("one", "frames_per_s_per_viewer", "1 viewer: frames/s", 1, ".1f"),
    ("many", "bytes_per_s_total", f"{VIEWERS} viewers: total KB/s", 1e-3, ".0f"),
    ("many", "frames_per_s_per_viewer", f"{VIEWERS} viewers: frames/s per viewer", 1, ".1f"),
    ("many", "server_cpu", f"{VIEWERS} viewers: server CPU (1 = one core)", 1, ".2f"),
    ("many", "epochs_per_s_no_viewers", f"{VIEWERS} viewers: epochs/s with none", 1, ".0f"),
    ("many", "epochs_per_s", f"{VIEWERS} viewers: epochs/s with them", 1, ".0f"),
]
for _name in BIG_NETS:
    ROWS += [
        (_name, "bytes_per_frame", f"{_name}: KB per frame", 1e-3, ".1f"),
        (_name, "bytes_per_s_per_viewer", f"{_name}: KB/s per viewer", 1e-3, ".1f"),
        (_name, "frames_per_s_per_viewer", f"{_name}: frames/s", 1, ".1f"),
    ]


def cell(results: dict[str, Any], section: str, key: str, scale: float, fmt: str) -> str:
    value = results.get(section, {}).get(key)
    return "—" if value is None else format(value * scale, fmt)


def report(results: dict[str, Any], before: dict[str, Any] | None) -> str:
    head = "| measure | before | after |" if before else "| measure | value |"
    lines = [head, "|---|---:|---:|" if before else "|---|---:|"]
    for section, key, label, scale, fmt in ROWS:
        now = cell(results, section, key, scale, fmt)
        lines.append(
            f"| {label} | {cell(before, section, key, scale, fmt)} | {now} |"
            if before
            else f"| {label} | {now} |"
        )
    for section in ("one", *BIG_NETS):
        parts = results.get(section, {}).get("parts_bytes_per_frame", {})
        text = ", ".join(f"{k} {v / 1000:.2f}" for k, v in parts.items() if v >= 50)
        lines.append(f"\n{section}: KB per frame by part: {text}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each window")
    parser.add_argument("--windows", type=int, default=3, help="page/no-page window pairs")
    parser.add_argument("--json", type=Path, help="save the results here")
    parser.add_argument("--compare", type=Path, help="results of an earlier run to compare")
    parser.add_argument("--skip-browser", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        server(Path(tmp) / "bench.db") as (url, pid),
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        if not args.skip_browser:
            results["browser"] = browser_case(url, pid, client, args.seconds, args.windows)
        results["one"] = viewers_case(url, pid, client, SPIRAL, 1, args.seconds)
        results["many"] = viewers_case(url, pid, client, SPIRAL, VIEWERS, args.seconds)
        for name, body in BIG_NETS.items():
            results[name] = viewers_case(url, pid, client, body, 1, args.seconds)
    before = json.loads(args.compare.read_text()) if args.compare else None
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    load = os.getloadavg()[0]
    sys.stdout.write(
        f"backprop-live live-view benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f", {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{args.seconds:g} s windows, load average {load:.1f} at the end\n\n"
    )
    sys.stdout.write(report(results, before) + "\n")


if __name__ == "__main__":
    main()

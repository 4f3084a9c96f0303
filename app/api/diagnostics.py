"""GET /api/diagnostics: counts a leak check reads (subscribers, tasks, threads, fds, children).

The run manager's own counts (``RunManager.diagnostics()``) plus what only the
process knows: open file descriptors, threads, asyncio tasks on the server's
event loop, and child processes (the forkserver and, below it, the training
workers). Linux only for the fd and process counts (read from /proc); -1 elsewhere.
Behind the token in token mode, like every /api route except /api/health.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from app.api.deps import Manager
from app.api.responses import StrictJSONResponse

router = APIRouter(tags=["diagnostics"])


class ProcessCounts(BaseModel):
    pid: int
    fds: int
    threads: int
    tasks: int
    children: int
    descendants: int


class Diagnostics(BaseModel):
    runs: int
    running: int
    workers: dict[str, int]
    subscribers: int
    hubs: int
    process: ProcessCounts
    manager: dict[str, Any]  # includes weights_cache (bytes, entries, ...) and jobs
    large_bodies: dict[str, int]  # LargeBodyGateMiddleware: slots, in_flight, waiting, peak, ...


@router.get(
    "/diagnostics",
    response_model=Diagnostics,
    summary="Resource counts for leak checks (runs, subscribers, fds, threads, tasks, children)",
)
async def diagnostics(request: Request, manager: Manager) -> Response:
    counts = manager.diagnostics()
    gate = request.app.state.body_gate
    body = {
        "runs": counts["runs"],
        "running": counts["running"],
        "workers": counts["workers"],
        "subscribers": counts["subscribers"],
        "hubs": counts["hubs"],
        "process": process_counts(),
        "manager": counts,
        "large_bodies": asdict(gate.stats()),
    }
    return StrictJSONResponse(body)


def process_counts() -> dict[str, int]:
    """This process's open fds, threads, event-loop tasks and child processes."""
    children, descendants = _child_processes(os.getpid())
    return {
        "pid": os.getpid(),
        "fds": _count_entries("/proc/self/fd"),
        "threads": threading.active_count(),
        "tasks": len(asyncio.all_tasks()),
        "children": children,
        "descendants": descendants,
    }


def _count_entries(path: str) -> int:
    try:
        return len(os.listdir(path))
    except OSError:
        return -1


def _child_processes(pid: int) -> tuple[int, int]:
    """(direct children, all descendants) of ``pid``, from /proc/*/stat; (-1, -1) without /proc."""
    parents: dict[int, int] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return -1, -1
    for entry in entries:
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue  # the process ended while we looked
        # The name (field 2) may hold spaces and parentheses: split after its last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[0] != "Z":  # zombies are gone, only not yet reaped
            parents[int(entry)] = int(fields[1])
    direct = [child for child, parent in parents.items() if parent == pid]
    seen = set(direct)
    frontier = list(direct)
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in seen:
                seen.add(child)
                frontier.append(child)
    return len(direct), len(seen)

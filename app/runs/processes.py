"""The worker processes' plumbing, seen from the server: a handle per worker, the reader
thread that hands its messages to the event loop, and how commands, kills and exits go.
The supervisor (supervisor.py) decides what happens; this module only moves messages
(worker_messages.py) and signals."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from app.runs.worker_messages import Command, Final

EOF = object()  # what the reader thread hands over when the pipe has closed


@dataclass
class Worker:
    """A running worker process: its pipe, the epoch it trains to, the queue its reader
    thread fills, and `done` once its run is stored and settled."""

    process: Any  # multiprocessing Process
    conn: Connection
    target: int
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    done: asyncio.Future[None] | None = None
    shutting_down: bool = False
    # Killed because its run is being re-made (a structural PATCH): nothing it did is kept.
    discarded: bool = False
    thread: threading.Thread | None = None


def warm_forkserver() -> None:
    with contextlib.suppress(Exception):  # only a head start; a real start reports errors
        from multiprocessing import forkserver

        forkserver.ensure_running()


def send(conn: Connection, msg: Command) -> None:
    with contextlib.suppress(OSError, ValueError):
        conn.send(msg)


def kill(process: Any) -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        process.kill()


def pid_of(worker: Worker) -> int | None:
    """The worker's process id, or None once its process object is closed (`join` closes it
    while the run's end is still being stored)."""
    try:
        pid: int | None = worker.process.pid
    except ValueError:
        return None
    return pid


def join(process: Any) -> int | None:
    process.join(5.0)
    if process.exitcode is None:
        kill(process)
        process.join(2.0)
    code: int | None = process.exitcode
    with contextlib.suppress(ValueError):
        process.close()
    return code


def exit_text(exitcode: int | None) -> str:
    if exitcode is None:
        return "exit status unknown"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def read_pipe(conn: Connection, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]) -> None:
    """Reader thread: block on the pipe, hand each message to the loop, stop after the end."""
    while True:
        msg: Any
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            msg = EOF
        except Exception as exc:  # a message that cannot be unpickled
            msg = exc
        try:
            loop.call_soon_threadsafe(queue.put_nowait, msg)
        except RuntimeError:  # the loop is closed
            return
        if msg is EOF or isinstance(msg, BaseException | Final):
            return

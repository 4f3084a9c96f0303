"""The worker processes' plumbing, seen from the server: the supervisor's record of a
trainer, the reader thread that hands a pipe's messages to the event loop, and how
commands, kills and exits go (`executor.LocalExecutor` puts them together).
The supervisor (supervisor.py) decides what happens; this module only moves messages
(worker_messages.py) and signals."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from app.runs.models import RunStatus
from app.runs.worker_messages import Command, Final

if TYPE_CHECKING:
    from app.runs.record import Run

EOF = object()  # what the reader thread hands over when the pipe has closed


@dataclass
class Worker:
    """A run's trainer as its supervisor holds it: the executor's handle (`executor.py`;
    None while it starts), the epoch it trains to, and `done` once its run is stored and
    settled."""

    target: int
    handle: Any = None  # executor.Handle (typed there: that module imports this one)
    done: asyncio.Future[None] | None = None
    shutting_down: bool = False
    # Killed because its run is being re-made (a structural PATCH): nothing it did is kept.
    discarded: bool = False
    # The server went down and left the run training on the cluster (Ray): another
    # server (or this one, restarted) adopts it; nothing here stops or frees it.
    detached: bool = False


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
    """The trainer's process id, or None while it starts or once its process object is
    closed (`join` closes it while the run's end is still being stored)."""
    return worker.handle.pid if worker.handle is not None else None


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


def outcome(
    run: Run,
    worker: Worker,
    final: Final | None,
    broken: str | None,
    ended: str,
) -> tuple[RunStatus, str | None]:
    """The status and message a run gets when its trainer ended: `final` is its last
    message (None if it never came), `broken` why the stream broke, `ended` how the
    trainer ended, in words (the handle's `join`)."""
    if final is None:
        if worker.shutting_down:
            return RunStatus.interrupted, "the server stopped while this run was training"
        name = worker.handle.name
        if broken:
            return RunStatus.failed, f"lost contact with {name} ({broken})"
        return RunStatus.failed, f"{name} died unexpectedly ({ended})"
    reason = final.reason
    if reason == "error":
        return RunStatus.failed, final.message or "training failed"
    if reason == "diverged":
        return RunStatus.diverged, final.message
    if reason == "shutdown":
        return RunStatus.interrupted, "the server stopped while this run was training"
    if reason in ("target_loss", "early_stopped"):  # the training controls' ends
        return RunStatus.completed, final.message
    if run.epoch >= run.config.epochs:
        return RunStatus.completed, None
    return RunStatus.stopped, None

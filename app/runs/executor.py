"""How a run trains: the `Executor` seam (DESIGN.md "Beyond one machine").

An executor starts a run's trainer and hands the supervisor a `Handle`: the worker's
messages in order on an asyncio queue (the pipe protocol of `app.runs.worker`, then
`EOF`, or an exception when the stream broke), commands to it, and how it ended.

- `LocalExecutor` (the default): one worker process per run on this machine
  (`processes.py`), as always.
- `RayExecutor` (`app.runs.ray_executor`, BACKPROP_LIVE_EXECUTOR=ray): one detached
  Ray actor per run, named by its id, so any server can find it (`attach`). Ray is
  imported only when that executor is chosen (`make_executor`).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import threading
from typing import Any, Protocol

from app.runs.processes import EOF, exit_text, join, kill, read_pipe, send, warm_forkserver
from app.runs.worker import run_worker
from app.runs.worker_messages import Command, WorkerJob

__all__ = ["EOF", "Executor", "Handle", "LocalExecutor", "LocalHandle", "make_executor"]


class Handle(Protocol):
    """One run's trainer, seen from the server that supervises (or only shows) it."""

    queue: asyncio.Queue[Any]  # worker messages, then EOF or an exception
    # Names the trainer in messages: "the worker process", "the Ray worker (actor …)".
    name: str

    @property
    def pid(self) -> int | None: ...

    def command(self, msg: Command) -> None:
        """Stop(), Shutdown() or SetLive(...); never raises."""

    def kill(self) -> None:
        """End the trainer now (its work is thrown away); never raises."""

    async def join(self) -> str:
        """After the stream ended: wait for the trainer to be gone; how it ended, in words."""

    def stored(self, epoch: int) -> None:
        """The run's checkpoint at `epoch`, with every message up to it, is in the store
        (called from the writer thread after the write). Ray: the actor drops them."""

    def release(self) -> None:
        """The run's end is stored: free what the trainer holds."""

    def detach(self) -> None:
        """The server is going down and leaves the trainer running (Ray): stop
        delivering its messages and end the queue with EOF."""


class Executor(Protocol):
    name: str  # "local" | "ray"

    async def launch(self, run_id: str, job: WorkerJob) -> Handle:
        """Start training `job` (run_worker's job) for `run_id`."""

    async def attach(self, run_id: str) -> Handle | None:
        """The trainer of `run_id` started by another server, or None (local: always)."""

    def warm(self) -> None:
        """A head start for the first launch (in a thread; errors ignored)."""


class LocalHandle:
    """A worker process on this machine, its pipe and the thread that reads it."""

    name = "the worker process"

    def __init__(self, process: Any, conn: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.process = process
        self.conn = conn
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.thread = threading.Thread(
            target=read_pipe,
            args=(conn, loop, self.queue),
            name=f"{process.name}-reader",
            daemon=True,
        )

    @property
    def pid(self) -> int | None:
        try:
            pid: int | None = self.process.pid
        except ValueError:  # closed by join while the run's end is stored
            return None
        return pid

    def command(self, msg: Command) -> None:
        send(self.conn, msg)

    def kill(self) -> None:
        kill(self.process)

    async def join(self) -> str:
        return exit_text(await asyncio.to_thread(join, self.process))

    def stored(self, epoch: int) -> None:
        pass  # the pipe keeps nothing

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()

    def detach(self) -> None:
        raise NotImplementedError("a worker process ends with its server")


class LocalExecutor:
    """One forkserver worker process per run (the default)."""

    name = "local"

    def __init__(self) -> None:
        self._mp = multiprocessing.get_context("forkserver")
        # Children start from a server that already imported NumPy and the trainer.
        self._mp.set_forkserver_preload(["app.runs.worker"])

    def warm(self) -> None:
        warm_forkserver()

    async def launch(self, run_id: str, job: WorkerJob) -> LocalHandle:
        parent_conn, child_conn = self._mp.Pipe(duplex=True)
        process = self._mp.Process(
            target=run_worker, args=(child_conn, job), name=f"run-{run_id}", daemon=True
        )
        try:
            await asyncio.to_thread(process.start)
        except BaseException:
            parent_conn.close()
            child_conn.close()
            raise
        child_conn.close()
        handle = LocalHandle(process, parent_conn, asyncio.get_running_loop())
        handle.thread.start()
        return handle

    async def attach(self, run_id: str) -> None:
        return None  # a worker process is only ever its own server's


def make_executor(kind: str, ray_address: str = "auto") -> Executor:
    """The executor a server's settings choose; Ray is imported only for "ray"."""
    if kind == "ray":
        from app.runs.ray_executor import RayExecutor

        return RayExecutor(ray_address)
    return LocalExecutor()

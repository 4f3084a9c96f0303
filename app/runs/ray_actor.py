"""What a Ray actor does for one training run (DESIGN.md "Beyond one machine").

Plain Python, no Ray import: `app.runs.ray_executor` wraps `RunActor` with `ray.remote`
(detached, named by run id, threaded). The actor runs today's `run_worker` loop, unchanged,
in a thread of its own, with a `ThreadConnection` in place of the pipe: the worker's
`send` appends to the actor's message log, and commands from any server reach its
`poll`/`recv` through a thread-safe queue.

The log keeps every worker message since the last one the run's lease holder acknowledged
(`ack`: "everything up to this message's checkpoint is in the store"), each with a sequence
number; any server reads it with `messages_since(seq)`. So a server that takes over a run
(its lease holder died) continues from the store's checkpoint with no gap, and a server
that only shows the run pulls its frames from here. The actor never touches the store.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.runs.worker import run_worker
from app.runs.worker_messages import Command, Final, Frame, WorkerJob

Message = Frame | Final  # a worker message, as the pipe carries it


def is_final(msg: Message) -> bool:
    return isinstance(msg, Final)


class ThreadConnection:
    """The worker's end of a duplex "pipe" inside one process: `send` hands a message to
    `on_send`; `poll`/`recv` read the commands `put` queued (from any thread). Only the
    worker's thread calls `poll` and `recv`."""

    def __init__(self, on_send: Callable[[Message], None]) -> None:
        self._on_send = on_send
        self._commands: queue.Queue[Command] = queue.Queue()
        self._peeked: deque[Command] = deque()
        self.closed = threading.Event()

    def put(self, command: Command) -> None:
        self._commands.put(command)

    def poll(self, timeout: float = 0.0) -> bool:
        if self._peeked:
            return True
        try:
            if timeout > 0:
                command = self._commands.get(timeout=timeout)
            else:
                command = self._commands.get_nowait()
        except queue.Empty:
            return False
        self._peeked.append(command)
        return True

    def recv(self) -> Command:
        return self._peeked.popleft() if self._peeked else self._commands.get()

    def send(self, msg: Message) -> None:
        if self.closed.is_set():
            raise OSError("the connection is closed")
        self._on_send(msg)

    def close(self) -> None:
        self.closed.set()


@dataclass(frozen=True)
class Pulled:
    """What `messages_since(seq)` returns.

    messages: (seq, message) for every kept message after `seq`, oldest first.
    base_epoch: the epoch of the last acknowledged checkpoint: the kept messages carry
        every epoch after it, the store every epoch up to it.
    acked: the sequence number acknowledged last; a reader whose `seq` is below it
        missed the dropped messages (it fills their epochs from the store).
    params: the latest weights (epoch, flat array) the dropped messages carried, when no
        kept message carries newer ones (None otherwise).
    """

    messages: list[tuple[int, Message]]
    base_epoch: int
    acked: int
    params: tuple[int, np.ndarray] | None


@dataclass(frozen=True)
class ActorStatus:
    run_id: str
    pid: int
    started: bool
    training: bool  # the worker thread is alive
    final: bool  # its final message is in the log (or was acknowledged)
    seq: int  # the newest message's number (0: none yet)
    acked: int
    base_epoch: int


class RunActor:
    """One run's trainer and its recent messages. Every method is thread-safe (the Ray
    actor is threaded: pulls, commands and acks from several servers at once)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._lock = threading.Lock()
        self._new_message = threading.Condition(self._lock)
        self._log: deque[tuple[int, Message]] = deque()
        self._seq = 0
        self._acked = 0
        self._base_epoch = 0
        self._params: tuple[int, np.ndarray] | None = None  # from dropped messages
        self._final = False
        self._thread: threading.Thread | None = None
        self._conn = ThreadConnection(self._append)

    def start(self, job: WorkerJob) -> int:
        """Train `job` (as `run_worker` takes it) in a thread; returns this process's id.
        A second start is refused: one actor trains one run once."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError(f"run {self.run_id} is already training on this actor")
            self._base_epoch = int(job.state.epoch) if job.state is not None else 0
            self._thread = threading.Thread(
                target=run_worker, args=(self._conn, job), name=f"run-{self.run_id}", daemon=True
            )
            self._thread.start()
        return os.getpid()

    def _append(self, msg: Message) -> None:
        with self._lock:
            self._seq += 1
            self._log.append((self._seq, msg))
            if is_final(msg):
                self._final = True
            self._new_message.notify_all()

    def command(self, msg: Command) -> None:
        """Stop(), Shutdown() or SetLive(...): the pipe's commands."""
        self._conn.put(msg)

    def messages_since(self, seq: int, wait: float = 0.0) -> Pulled:
        """The kept messages after `seq`; with `wait`, waits up to that many seconds for
        one when there is none yet (a long poll: a frame reaches a reader at once)."""
        with self._lock:
            if wait > 0:
                self._new_message.wait_for(lambda: self._seq > seq, timeout=wait)
            messages = [(s, m) for s, m in self._log if s > seq]
            params = self._params if seq < self._acked else None
            if params is not None and any(m.params is not None for _, m in messages):
                params = None
            return Pulled(messages, self._base_epoch, self._acked, params)

    def ack(self, seq: int) -> None:
        """The lease holder stored everything up to message `seq`'s checkpoint: drop the
        messages up to it (their latest weights are kept for readers that missed them)."""
        with self._lock:
            while self._log and self._log[0][0] <= seq:
                _, msg = self._log.popleft()
                epoch = msg.epoch
                if epoch is not None:
                    self._base_epoch = max(self._base_epoch, int(epoch))
                params = msg.params
                if params is not None and epoch is not None:
                    self._params = (int(epoch), params)
            self._acked = max(self._acked, seq)

    def status(self) -> ActorStatus:
        with self._lock:
            thread = self._thread
            return ActorStatus(
                run_id=self.run_id,
                pid=os.getpid(),
                started=thread is not None,
                training=thread is not None and thread.is_alive(),
                final=self._final,
                seq=self._seq,
                acked=self._acked,
                base_epoch=self._base_epoch,
            )

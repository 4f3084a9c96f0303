"""The Ray executor (BACKPROP_LIVE_EXECUTOR=ray): one detached Ray actor per training run.

The only module that imports Ray (`app.runs.executor.make_executor` imports it when the
setting asks for it). The actor (`app.runs.ray_actor.RunActor`) is named by the run's id in
the namespace "backprop-live", so any server on the cluster finds it (`attach`); it is
detached (it outlives the server that started it) and never restarted (a restarted actor
would have lost its trainer: the run fails instead, see the README). It asks for a token
share of a CPU: how many runs train at once is a count in the store
(`Store.count_running`), and 8 runs must fit on 2 cores; but not none, because an API
server joins the cluster as a node with no CPU (deploy/), and an actor asking for nothing
could be placed there and die with that server. The actors are spread over the nodes
that have CPUs ("SPREAD").

A `RayHandle` gives the supervisor what the pipe gives for a local worker: a task pulls
the actor's messages (`messages_since`, a long poll) into the handle's queue, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError

from app.runs.errors import ProblemError
from app.runs.processes import EOF
from app.runs.ray_actor import ActorStatus, Pulled, RunActor, is_final
from app.runs.worker_messages import Command, WorkerJob

log = logging.getLogger(__name__)

NAMESPACE = "backprop-live"
# A token share: never placed on a 0-CPU node (an API server), and 100 fit on one core;
# the running-runs limit is a count in the store, not Ray resources.
ACTOR_CPUS = 0.01
# Calls in flight on one actor: long polls from several servers, commands, acks.
ACTOR_CONCURRENCY = 16
PULL_WAIT = 0.5  # seconds a pull waits on the actor for a new message
CONNECT_TIMEOUT = 5.0  # seconds to reach a host:port head before ray.init is tried
NAME_FREE_TIMEOUT = 10.0  # seconds to wait for a killed actor's name to be free again

RemoteRunActor = ray.remote(RunActor)


class RayHandle:
    """A run's actor, seen from one server: the pulled messages, commands, acks."""

    def __init__(self, actor: Any, run_id: str, pid: int | None, since: int = 0) -> None:
        self.actor = actor
        self.run_id = run_id
        self.name = f"the Ray worker training this run (actor {run_id!r})"
        self._pid = pid
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.cursor = since  # the newest message handed to the queue
        self.lost: str | None = None  # why the actor could not be reached, once it could not
        self.final = False
        self._checkpoints: dict[int, int] = {}  # checkpoint epoch -> its message's seq
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self.on_pull: Any = None  # called with each Pulled before its messages are queued

    @property
    def pid(self) -> int | None:
        return self._pid

    def start_pulling(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._pull(), name=f"run-{self.run_id}-puller"
        )

    async def _pull(self) -> None:
        while True:
            try:
                pulled: Pulled = await self.actor.messages_since.remote(self.cursor, PULL_WAIT)
            except RayActorError as exc:
                self.lost = _first_line(exc)
                self.queue.put_nowait(EOF)
                return
            except RayError as exc:
                self.queue.put_nowait(exc)
                return
            if self.on_pull is not None:
                self.on_pull(pulled)
            for seq, msg in pulled.messages:
                self.cursor = seq
                state = msg.state
                if state is not None:
                    with self._lock:
                        self._checkpoints[int(state.epoch)] = seq
                self.queue.put_nowait(msg)
                if is_final(msg):
                    self.final = True
                    return

    def stop_pulling(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def detach(self) -> None:
        self.stop_pulling()
        self.queue.put_nowait(EOF)

    def command(self, msg: Command) -> None:
        with contextlib.suppress(RayError):
            self.actor.command.remote(msg)

    def kill(self) -> None:
        with contextlib.suppress(RayError, ValueError):
            ray.kill(self.actor, no_restart=True)

    async def join(self) -> str:
        if self.final:
            return "it finished"
        return self.lost or "it stopped answering"

    def stored(self, epoch: int) -> None:
        """Acknowledge the newest message whose checkpoint is ≤ epoch (writer thread)."""
        with self._lock:
            done = [e for e in self._checkpoints if e <= epoch]
            seq = max((self._checkpoints.pop(e) for e in done), default=None)
        if seq is not None:
            with contextlib.suppress(RayError):
                ray.get(self.actor.ack.remote(seq), timeout=10)

    def release(self) -> None:
        """The run's end is stored: the actor is not needed any more."""
        self.stop_pulling()
        self.kill()


class RayExecutor:
    """Launches and finds runs' actors on the Ray cluster at `address`."""

    name = "ray"

    def __init__(self, address: str = "auto") -> None:
        self.address = address
        self._init_lock = threading.Lock()

    def connect(self) -> None:
        """`ray.init` once, lazily (blocking: call it in a thread)."""
        with self._init_lock:
            if not ray.is_initialized():
                _check_reachable(self.address)
                ray.init(
                    address=self.address,
                    namespace=NAMESPACE,
                    log_to_driver=False,
                    configure_logging=False,
                )

    def warm(self) -> None:
        self.connect()

    async def launch(self, run_id: str, job: WorkerJob) -> RayHandle:
        """A new actor training `job`; ProblemError(503) when the cluster cannot take it."""
        try:
            await asyncio.to_thread(self.connect)
            actor = await asyncio.to_thread(self._new_actor, run_id)
        except Exception as exc:
            raise ProblemError(
                503, f"the Ray cluster ({self.address}) cannot start the run: {_first_line(exc)}"
            ) from exc
        try:
            pid: int = await actor.start.remote(job)
        except BaseException as exc:
            with contextlib.suppress(RayError, ValueError):
                ray.kill(actor, no_restart=True)
            if isinstance(exc, RayError):
                raise ProblemError(
                    503, f"the Ray actor of this run could not start: {_first_line(exc)}"
                ) from exc
            raise
        handle = RayHandle(actor, run_id, pid)
        handle.start_pulling()
        return handle

    def _new_actor(self, run_id: str) -> Any:
        """A fresh actor named `run_id`; an old one of that name (a run re-made, or whose
        end was stored by a server that died before freeing it) is killed first."""
        deadline = time.monotonic() + NAME_FREE_TIMEOUT
        while True:
            with contextlib.suppress(ValueError):
                ray.kill(ray.get_actor(run_id, namespace=NAMESPACE), no_restart=True)
            try:
                return RemoteRunActor.options(
                    name=run_id,
                    namespace=NAMESPACE,
                    lifetime="detached",
                    max_restarts=0,
                    max_concurrency=ACTOR_CONCURRENCY,
                    num_cpus=ACTOR_CPUS,
                    # Ray would pack these small actors on one node: spread them over the
                    # nodes that have CPUs instead.
                    scheduling_strategy="SPREAD",
                ).remote(run_id)
            except ValueError:  # the name is still taken by the actor being killed
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def reachable(self) -> bool:
        """(blocking) Whether the cluster answers (connecting if need be)."""
        try:
            self.connect()
        except Exception as exc:
            log.warning("the Ray cluster (%s) cannot be reached: %s", self.address, exc)
            return False
        return True

    def on_cluster(self, run_id: str) -> bool:
        """(blocking, fast) Whether an actor for `run_id` is alive on the cluster; True
        when the cluster cannot be asked (the run is left alone, and adopted later)."""
        if not self.reachable():
            return True
        try:
            ray.get_actor(run_id, namespace=NAMESPACE)
        except ValueError:
            return False
        return True

    async def attach(self, run_id: str, since: int = 0, *, pull: bool = True) -> RayHandle | None:
        """The actor training `run_id` (started by any server), pulling its messages
        after `since` into the handle's queue (unless `pull` is False: commands only);
        None when there is none, or the cluster cannot be reached."""
        try:
            await asyncio.to_thread(self.connect)
        except Exception as exc:
            log.warning("the Ray cluster (%s) cannot be reached: %s", self.address, exc)
            return None
        try:
            actor = ray.get_actor(run_id, namespace=NAMESPACE)
        except ValueError:
            return None
        try:
            status: ActorStatus = await asyncio.wait_for(actor.status.remote(), 10)
        except (RayError, TimeoutError, GetTimeoutError):
            return None
        if not status.started:
            return None
        handle = RayHandle(actor, run_id, status.pid, since)
        if pull:
            handle.start_pulling()
        return handle


def _check_reachable(address: str) -> None:
    """Fail in seconds, in words, when a host:port head does not answer: `ray.init` would
    retry for minutes (a request that starts a run would hang that long)."""
    if address == "auto":
        return  # ray.init finds this machine's cluster, or fails at once
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise ConnectionError(f"no Ray head answers at {address} ({exc})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

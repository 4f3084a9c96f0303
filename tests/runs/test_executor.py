"""The executor seam without Ray: the in-thread connection, the actor's message log and its
acknowledgements (RunActor is plain Python; Ray only wraps it), the local executor, and
that Ray is imported only when chosen."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from typing import Any

import numpy as np

from app.nn.metrics import EpochMetrics
from app.runs.executor import EOF, LocalExecutor, make_executor
from app.runs.models import RunCreate
from app.runs.ray_actor import RunActor, ThreadConnection, is_final
from app.runs.record import prepare_run
from app.runs.worker_messages import Final, SetLive, Shutdown, Stop, WorkerJob
from tests.runs.helpers import run_async


def job_for(epochs: int, eps: float | None = None, **fields: Any) -> WorkerJob:
    body = RunCreate(
        dataset={"kind": "spiral", "n_samples": 200, "seed": 1},
        hidden_layers=[8, 8],
        epochs=epochs,
        seed=3,
        max_epochs_per_second=eps,
        **fields,
    )
    run, custom = prepare_run(body)
    return WorkerJob(
        config=run.config,
        target=epochs,
        checkpoint_interval=0.0,
        frame_interval=0.01,
        custom=custom,
    )


def rows_of(messages: list[Any]) -> list[EpochMetrics]:
    return [row for msg in messages for row in msg.metrics]


def test_thread_connection_carries_commands_in_order_and_polls_with_a_timeout() -> None:
    sent: list[Any] = []
    conn = ThreadConnection(sent.append)
    assert not conn.poll()
    conn.put(Stop())
    conn.put(SetLive({"learning_rate": 0.1}))
    assert conn.poll() and conn.poll()  # a peeked command stays pending
    assert conn.recv() == Stop()
    assert conn.recv() == SetLive({"learning_rate": 0.1})
    threading.Timer(0.05, conn.put, args=(Shutdown(),)).start()
    assert conn.poll(5.0)
    assert conn.recv() == Shutdown()
    conn.send("a frame")
    conn.close()
    try:
        conn.send("a frame")
    except OSError:
        pass
    else:
        raise AssertionError("send after close must fail like a closed pipe")
    assert sent == ["a frame"]


def _drain(actor: RunActor, since: int = 0, timeout: float = 60.0) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    while not (out and is_final(out[-1][1])):
        pulled = actor.messages_since(since, wait=timeout)
        assert pulled.messages, "no message within the timeout"
        out += pulled.messages
        since = pulled.messages[-1][0]
    return out


def test_actor_in_process_trains_each_epoch_once_and_ack_keeps_the_rest() -> None:
    actor = RunActor("r1")
    actor.start(job_for(40, eps=400))
    messages = _drain(actor)
    seqs = [s for s, _ in messages]
    assert seqs == list(range(1, len(seqs) + 1))
    assert [r.epoch for r in rows_of([m for _, m in messages])] == list(range(1, 41))
    final = messages[-1][1]
    assert final.reason == "completed" and final.epoch == 40
    # Acknowledge a middle checkpoint: older messages go, the rest stay for a new reader.
    middle = next(s for s, m in messages if m.state is not None and m.epoch >= 10)
    acked_epoch = dict(messages)[middle].epoch
    assert acked_epoch < 40, "the run should have sent frames before its end"
    actor.ack(middle)
    late = actor.messages_since(0)
    assert late.acked == middle and late.base_epoch == acked_epoch
    assert [r.epoch for r in rows_of([m for _, m in late.messages])] == list(
        range(acked_epoch + 1, 41)
    )
    # A reader behind the ack gets the latest weights only when no kept message has newer.
    assert late.params is None  # the final message carries weights
    status = actor.status()
    assert status.final and not status.training and status.seq == seqs[-1]


def test_a_reader_behind_the_ack_gets_the_dropped_messages_latest_weights() -> None:
    actor = RunActor("r2")
    actor.start(job_for(5))
    messages = _drain(actor)
    last = messages[-1][0]
    actor.ack(last)
    pulled = actor.messages_since(0)
    assert pulled.messages == [] and pulled.base_epoch == 5
    assert pulled.params is not None
    epoch, params = pulled.params
    assert epoch == 5
    np.testing.assert_array_equal(params, messages[-1][1].params)
    assert actor.messages_since(last).params is None  # not behind: nothing to fill


def test_actor_stop_command_ends_with_stopped() -> None:
    actor = RunActor("r3")
    actor.start(job_for(100_000, eps=200))
    first = actor.messages_since(0, wait=60)
    assert first.messages
    actor.command(SetLive({"learning_rate": 0.25}))
    actor.command(Stop())
    messages = _drain(actor, first.messages[-1][0])
    final = messages[-1][1]
    assert final.reason == "stopped" and final.epoch < 100_000


@run_async
async def test_local_executor_gives_the_pipe_messages_and_an_exit_text() -> None:
    handle = await LocalExecutor().launch("local1", job_for(12))
    rows: list[EpochMetrics] = []
    while True:
        msg = await asyncio.wait_for(handle.queue.get(), 60)
        assert msg is not EOF
        rows += msg.metrics
        if isinstance(msg, Final):
            break
    assert [r.epoch for r in rows] == list(range(1, 13))
    assert await handle.join() == "exit code 0"
    handle.release()
    assert handle.pid is None  # closed by join


def test_importing_the_app_does_not_import_ray() -> None:
    code = "import sys, app.main, app.runs.executor; assert 'ray' not in sys.modules, 'ray'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_local_executor_is_the_default() -> None:
    assert make_executor("local").name == "local"

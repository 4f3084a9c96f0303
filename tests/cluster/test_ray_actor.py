"""The run actor on a real local Ray head: every epoch once, the same numbers as a local
worker process, commands, acknowledgements with a second reader, and a killed actor."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import numpy as np
import pytest

from app.nn.metrics import EpochMetrics
from app.runs.executor import EOF, LocalExecutor
from app.runs.worker_messages import Final, Frame, SetLive, Stop
from tests.runs.helpers import run_async
from tests.runs.test_executor import job_for

ray_executor = (
    pytest.importorskip("app.runs.ray_executor") if os.environ.get("CI") != "true" else None
)
if ray_executor is None:
    import app.runs.ray_executor as ray_executor  # CI: Ray must be there

RayExecutor = ray_executor.RayExecutor
RayHandle = ray_executor.RayHandle


async def drain(handle: Any, timeout: float = 120.0) -> list[Any]:
    """Every message until the final one (or EOF/an error, returned last)."""
    out: list[Any] = []
    while True:
        msg = await asyncio.wait_for(handle.queue.get(), timeout)
        out.append(msg)
        if msg is EOF or isinstance(msg, BaseException | Final):
            return out


def rows_of(messages: list[Any]) -> list[EpochMetrics]:
    return [row for msg in messages if isinstance(msg, Frame | Final) for row in msg.metrics]


@run_async
async def test_actor_trains_every_epoch_once_like_a_local_worker(ray_head: str) -> None:
    job = job_for(30, eps=300)
    handle = await RayExecutor(ray_head).launch("actor-same", job)
    try:
        messages = await drain(handle)
    finally:
        handle.release()
    assert messages[-1].reason == "completed"
    assert len(messages) > 2, "the actor should stream frames, not only its end"
    ray_rows = rows_of(messages)
    assert [r.epoch for r in ray_rows] == list(range(1, 31))
    assert handle.pid != os.getpid()

    local = await LocalExecutor().launch("local-same", job)
    local_rows = rows_of(await drain(local))
    await local.join()
    local.release()
    assert ray_rows == local_rows  # the same seed, the same trainer: bit for bit
    np.testing.assert_array_equal(messages[-1].params, messages[-1].state.arrays["params"])


@run_async
async def test_set_and_stop_commands_reach_the_actor(ray_head: str) -> None:
    handle = await RayExecutor(ray_head).launch("actor-commands", job_for(100_000, eps=100))
    try:
        first = await asyncio.wait_for(handle.queue.get(), 120)
        assert isinstance(first, Frame)
        handle.command(SetLive({"learning_rate": 0.5}))
        seen_rate = False
        while not seen_rate:
            msg = await asyncio.wait_for(handle.queue.get(), 60)
            seen_rate = any(r.learning_rate == 0.5 for r in msg.metrics)
        handle.command(Stop())
        rest = await drain(handle)
    finally:
        handle.release()
    final = rest[-1]
    assert isinstance(final, Final) and final.reason == "stopped"
    assert final.epoch < 100_000
    assert await handle.join() == "it finished"


@run_async
async def test_ack_drops_old_messages_and_a_second_reader_goes_on_without_a_gap(
    ray_head: str,
) -> None:
    executor = RayExecutor(ray_head)
    holder = await executor.launch("actor-ack", job_for(60, eps=60))
    try:
        stored: list[EpochMetrics] = []  # what the holder "stored"
        acked_epoch = 0
        while acked_epoch < 10:
            msg = await asyncio.wait_for(holder.queue.get(), 60)
            stored += msg.metrics
            if msg.state is not None:
                acked_epoch = int(msg.state.epoch)
                await asyncio.to_thread(holder.stored, acked_epoch)
        pulls: list[Any] = []
        reader = await executor.attach("actor-ack")
        assert reader is not None
        reader.on_pull = pulls.append
        messages = await drain(reader)
        assert pulls[0].base_epoch == acked_epoch and pulls[0].acked > 0
        read = rows_of(messages)
        assert read[0].epoch == acked_epoch + 1  # the acked part is gone from the actor
        history = [r for r in stored if r.epoch <= acked_epoch] + read
        assert [r.epoch for r in history] == list(range(1, 61))
        assert messages[-1].reason == "completed"
    finally:
        holder.release()


@run_async
async def test_a_killed_actor_process_is_seen_as_lost(ray_head: str) -> None:
    handle = await RayExecutor(ray_head).launch("actor-killed", job_for(100_000, eps=50))
    first = await asyncio.wait_for(handle.queue.get(), 120)
    assert isinstance(first, Frame)
    assert handle.pid is not None
    os.kill(handle.pid, signal.SIGKILL)
    rest = await drain(handle)
    assert rest[-1] is EOF
    text = await handle.join()
    assert "died" in text.lower() or "killed" in text.lower(), text
    handle.release()

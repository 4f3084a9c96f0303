"""app.runs.sse: the one SSE encoder and the one subscription loop of both streams."""

from __future__ import annotations

import asyncio
import time

from app.runs import sse
from app.runs.broadcast import RunHub
from app.runs.models import RunStatus
from tests.runs.helpers import run_async
from tests.runs.test_broadcast import row, view


def test_encode_single_and_multi_line_payloads() -> None:
    assert sse.encode("epoch", b'{"a":1}', 7) == b'event: epoch\nid: 7\ndata: {"a":1}\n\n'
    assert sse.encode("frame", "<a>\r\n<b>\r<c>") == (
        b"event: frame\ndata: <a>\ndata: <b>\ndata: <c>\n\n"
    )


async def _collect(loop: sse.Subscription, seen: int, out: list[tuple[sse.Tick, float]]) -> None:
    async for tick in loop.ticks(seen):
        out.append((tick, time.monotonic()))


@run_async
async def test_frames_are_coalesced_on_the_shared_grid() -> None:
    hub = RunHub(view())
    loop = sse.Subscription(hub, lambda: False, max_fps=10, ping_interval=30)
    ticks: list[tuple[sse.Tick, float]] = []
    task = asyncio.create_task(_collect(loop, hub.version, ticks))
    for epoch in range(1, 31):  # 30 versions in ~0.3 s: at most ~4 frames at 10 a second
        hub.publish([row(epoch)], view(epoch=epoch))
        await asyncio.sleep(0.01)
    hub.close()
    await asyncio.wait_for(task, 5)
    frames = [at for tick, at in ticks if tick is sse.Tick.FRAME]
    assert 1 <= len(frames) <= 5
    assert ticks[-1][0] is sse.Tick.CLOSED
    # Each frame starts on the grid of 0.1 s (give or take the event loop's latency).
    for at in frames:
        assert (at % 0.1) < 0.05


@run_async
async def test_urgent_changes_skip_the_gap_and_pings_fill_silence() -> None:
    hub = RunHub(view())
    seq = [hub.status_seq]
    loop = sse.Subscription(
        hub, lambda: False, max_fps=1, ping_interval=0.05, urgent=lambda: hub.status_seq != seq[0]
    )
    ticks: list[tuple[sse.Tick, float]] = []
    task = asyncio.create_task(_collect(loop, hub.version, ticks))
    await asyncio.sleep(0.2)
    assert [t for t, _ in ticks][:2] == [sse.Tick.PING, sse.Tick.PING]
    loop.last_frame_at = time.monotonic()  # a frame just went out: the next is due in 1 s
    t0 = time.monotonic()
    hub.set_view(view(RunStatus.stopped))
    while not any(t is sse.Tick.FRAME for t, _ in ticks):
        await asyncio.sleep(0.01)
    first = next(at for t, at in ticks if t is sse.Tick.FRAME)
    assert first - t0 < 0.5  # a status change does not wait out the 1 s gap
    hub.close()
    await asyncio.wait_for(task, 5)


@run_async
async def test_shutdown_ends_the_loop_without_closed() -> None:
    hub = RunHub(view())
    stopping = [False]
    loop = sse.Subscription(hub, lambda: stopping[0], max_fps=20, ping_interval=30)
    ticks: list[tuple[sse.Tick, float]] = []
    task = asyncio.create_task(_collect(loop, hub.version, ticks))
    await asyncio.sleep(0)
    stopping[0] = True
    hub.wake()
    await asyncio.wait_for(task, 5)
    assert ticks == []


@run_async
async def test_a_change_before_the_loop_starts_is_not_lost() -> None:
    hub = RunHub(view())
    seen = hub.version
    hub.publish([row(1)], view(epoch=1))  # between the snapshot and the loop's first wait
    loop = sse.Subscription(hub, lambda: False, max_fps=20, ping_interval=30)
    ticks: list[tuple[sse.Tick, float]] = []
    task = asyncio.create_task(_collect(loop, seen, ticks))
    while not ticks:
        await asyncio.sleep(0.01)
    assert ticks[0][0] is sse.Tick.FRAME
    hub.close()
    await asyncio.wait_for(task, 5)

"""Noticing the server's SIGTERM/SIGINT early enough to end live streams.

An ASGI app is told to shut down (lifespan) only after every connection has
closed, and an SSE stream never closes by itself: without a hint, `uvicorn
app.main:app` with a dashboard open would never exit. The server's signal
handlers are the one early sign, so we chain onto them: the server still does
what it always does, and the manager first ends every stream.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def chain_shutdown_signals(on_shutdown: Callable[[], None]) -> bool:
    """Call `on_shutdown` in the running event loop when SIGINT/SIGTERM arrives, then
    the handler that was there before. Only from the main thread (servers started in
    other threads, like the tests', keep their own handlers): returns whether it did."""
    if threading.current_thread() is not threading.main_thread():
        return False
    loop = asyncio.get_running_loop()
    for signum in SHUTDOWN_SIGNALS:
        previous = signal.getsignal(signum)
        # Without a Python handler the default action ends the process anyway.
        if callable(previous):
            signal.signal(signum, _chained(loop, on_shutdown, previous))
    return True


def _chained(
    loop: asyncio.AbstractEventLoop, on_shutdown: Callable[[], None], previous: Any
) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(on_shutdown)
        previous(signum, frame)

    return handler

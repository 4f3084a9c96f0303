"""Ending SSE streams when the server begins to shut down.

An SSE stream never ends on its own, and uvicorn only runs the lifespan
shutdown after every connection has finished — so by default (no
``--timeout-graceful-shutdown``) ``uvicorn app.main:app`` with a dashboard open
would wait forever on SIGTERM/Ctrl-C. The server's signal handlers are the only
early sign of a shutdown an ASGI app can see: the first stream request chains
onto them (main thread only; servers in threads, like the tests', keep theirs)
and sets a flag that every stream checks whenever it wakes (at least once per
ping interval), then ends.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from fastapi import FastAPI

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def shutdown_flag(app: FastAPI) -> threading.Event:
    """The app's "shutting down" flag, hooked to the server's signal handlers once."""
    flag: threading.Event | None = getattr(app.state, "api_shutdown", None)
    if flag is not None:
        return flag
    flag = threading.Event()
    app.state.api_shutdown = flag
    if threading.current_thread() is threading.main_thread():
        for signum in SHUTDOWN_SIGNALS:
            previous = signal.getsignal(signum)
            if callable(previous):
                signal.signal(signum, _chained(flag, previous))
    return flag


def _chained(flag: threading.Event, previous: Any) -> Any:
    def handler(signum: int, frame: FrameType | None) -> None:
        flag.set()
        previous(signum, frame)

    return handler

"""End the UI's SSE streams when the server begins to shut down.

An SSE stream never ends on its own and uvicorn runs the lifespan shutdown only
after every connection has closed, so without ``--timeout-graceful-shutdown``
an open dashboard tab would keep ``uvicorn app.main:app`` from exiting on
SIGTERM/Ctrl-C. The server's signal handlers are the only early sign of a
shutdown an ASGI app sees: the first UI stream chains onto them (main thread
only; servers running in threads, like the tests', keep their own) and sets a
flag that every stream checks whenever it wakes (at least once per ping
interval). The browser's EventSource then reconnects to the restarted server.

(The API's streams do the same in ``app.api.shutdown``; the UI may not import
the API, hence this small twin.)
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def shutdown_flag(state: Any) -> threading.Event:
    """The "shutting down" flag kept on ``state`` (app.state), hooked to the signals once."""
    flag: threading.Event | None = getattr(state, "ui_shutdown", None)
    if flag is not None:
        return flag
    flag = threading.Event()
    state.ui_shutdown = flag
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

"""Driving a RunManager from plain sync tests: one event loop per test, no sleeps."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from app.config import Settings
from app.runs.broadcast import RunHub
from app.runs.manager import RunManager
from app.storage.store import open_store

TEST_TIMEOUT = 120.0
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def run_async(fn: F) -> Callable[..., Any]:
    """Run an async test body in a fresh event loop (pytest still injects its fixtures)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(asyncio.wait_for(fn(*args, **kwargs), TEST_TIMEOUT))

    return wrapper


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[RunManager]:
    """A started manager on settings.db; shut down and closed afterwards."""
    store = open_store(settings.db)
    manager = RunManager(store, settings)
    await manager.startup()
    try:
        yield manager
    finally:
        await manager.shutdown()
        store.close()


async def wait_until(hub: RunHub, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Await hub versions until `condition()` holds (TimeoutError after `timeout` s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    version = hub.version
    while not condition():
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError("condition not reached")
        version = await hub.wait(version, remaining)


async def wait_settled(hub: RunHub, timeout: float = 60.0) -> None:
    """Until the run is no longer running."""
    await wait_until(hub, lambda: hub.status != "running", timeout)

"""Dependencies shared by the route files."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from app.runs.manager import RunManager


def get_manager(request: Request) -> RunManager:
    """The app's RunManager, created by the lifespan in app.main."""
    manager: RunManager = request.app.state.manager
    return manager


Manager = Annotated[RunManager, Depends(get_manager)]

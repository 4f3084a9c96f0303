"""/api/health: a liveness probe that never touches the database."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from app.api.schemas import Health

router = APIRouter(tags=["health"])

_OK = b'{"status":"ok"}'


@router.get("/health", response_model=Health)
async def health() -> Response:
    return Response(_OK, media_type="application/json")

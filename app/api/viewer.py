"""GET /api/runs/{id}/viewer-key: the run's watch-only link (API.md v1.1 "Classroom")."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from app.api.deps import Manager
from app.api.responses import StrictJSONResponse
from app.api.routing import StrictJSONRoute
from app.api.schemas import ERROR_RESPONSES
from app.viewer_keys import viewer_key, watch_url

router = APIRouter(prefix="/runs", tags=["runs"], route_class=StrictJSONRoute)


class ViewerKey(BaseModel):
    key: str
    url: str


@router.get(
    "/{run_id}/viewer-key",
    response_model=ViewerKey,
    responses={404: ERROR_RESPONSES[404]},
    summary="A key that lets a person without the token watch this run (read-only)",
    description=(
        "The key opens GET of `/watch/{id}`, its stream and `/api/runs/{id}` (with "
        "`/metrics`, `/weights`, `/events`, `/snapshots`) of this run only, with `?key=`. "
        "It is derived from the access token: the same after a restart, void when the "
        "run is deleted or the token changes. Without a token nothing asks for it."
    ),
)
async def get_viewer_key(run_id: str, manager: Manager, request: Request) -> Response:
    manager.get(run_id)  # 404 for an unknown run
    key = viewer_key(request.app.state.settings.token, run_id)
    return StrictJSONResponse({"key": key, "url": watch_url(run_id, key)})

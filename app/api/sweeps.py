"""/api/sweeps (API.md v1.1 "Sweeps and the `queued` status"): a grid of runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field
from starlette.responses import Response

from app.api.deps import Manager
from app.api.responses import StrictJSONResponse
from app.api.routing import StrictJSONRoute
from app.api.schemas import ERROR_RESPONSES, RunPublic
from app.runs.sweeps import SweepCreate

router = APIRouter(prefix="/sweeps", tags=["sweeps"], route_class=StrictJSONRoute)


class SweepPublic(BaseModel):
    """The API's Sweep object."""

    id: str
    name: str
    grid: dict[str, list[Any]]
    base: dict[str, Any]
    runs: list[RunPublic] = Field(description="one per grid combination, in grid order")
    created_at: str = Field(description="ISO-8601")


class SweepList(BaseModel):
    sweeps: list[SweepPublic] = Field(description="newest first")


_NOT_FOUND = {404: {**ERROR_RESPONSES[404], "description": "unknown sweep"}}


@router.post(
    "",
    status_code=201,
    response_model=SweepPublic,
    responses={code: ERROR_RESPONSES[code] for code in (409, 413, 422, 503)},
    summary="Create one run per grid combination (at most 64); those without a slot queue",
)
async def create_sweep(
    manager: Manager, body: Annotated[SweepCreate | None, Body()] = None
) -> Response:
    view = await manager.create_sweep(body if body is not None else SweepCreate())
    return StrictJSONResponse(view.public(), status_code=201)


@router.get("", response_model=SweepList, summary="Every sweep, newest first")
async def list_sweeps(manager: Manager) -> Response:
    return StrictJSONResponse({"sweeps": [s.public() for s in manager.list_sweeps()]})


@router.get("/{sweep_id}", response_model=SweepPublic, responses=_NOT_FOUND)
async def get_sweep(sweep_id: str, manager: Manager) -> Response:
    return StrictJSONResponse(manager.get_sweep(sweep_id).public())


@router.post(
    "/{sweep_id}/stop",
    response_model=SweepPublic,
    responses={**_NOT_FOUND, 503: ERROR_RESPONSES[503]},
    summary="Stop its running and queued runs",
)
async def stop_sweep(sweep_id: str, manager: Manager) -> Response:
    return StrictJSONResponse((await manager.stop_sweep(sweep_id)).public())


@router.delete(
    "/{sweep_id}",
    status_code=204,
    response_class=Response,
    responses={**_NOT_FOUND, 503: ERROR_RESPONSES[503]},
    summary="Stop it, then delete it and its runs",
)
async def delete_sweep(sweep_id: str, manager: Manager) -> Response:
    await manager.delete_sweep(sweep_id)
    return Response(status_code=204)

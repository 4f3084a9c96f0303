"""/api/runs/{id}: editing a run's weights, its teacher, and copies (API.md v1.1)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from app.api.deps import Manager
from app.api.responses import StrictJSONResponse, json_pieces_response
from app.api.routing import StrictJSONRoute
from app.api.schemas import ERROR_RESPONSES, Layer, RunPublic, Weights

router = APIRouter(prefix="/runs", tags=["runs"], route_class=StrictJSONRoute)


class WeightsBody(BaseModel):
    """Body of `PUT /api/runs/{id}/weights` (shapes are checked against the run)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    layers: list[Layer] = Field(description="as `GET /weights`: one entry per layer")


class Teacher(BaseModel):
    layers: list[Layer]
    activation: str = Field(description="applied on every layer, the output's included")


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: ERROR_RESPONSES[code] for code in codes}


@router.put(
    "/{run_id}/weights",
    response_model=Weights,
    responses=_errors(404, 409, 413, 422, 503),
    summary="Replace the current weights (not while the run is running)",
)
async def put_weights(run_id: str, body: WeightsBody, manager: Manager) -> Response:
    layers = await manager.jobs.run(lambda: [layer.model_dump() for layer in body.layers])
    await manager.put_weights(run_id, layers)
    # The answer is GET /weights's: encoded off the loop, sent in pieces.
    return json_pieces_response(await manager.weights_json(run_id))


@router.get(
    "/{run_id}/teacher",
    response_model=Teacher,
    responses=_errors(404),
    summary="The teacher network that labels a `teacher` run's data",
)
async def get_teacher(run_id: str, manager: Manager) -> Response:
    return StrictJSONResponse(manager.teacher(run_id))


@router.post(
    "/{run_id}/duplicate",
    status_code=201,
    response_model=RunPublic,
    responses=_errors(404, 409, 503),
    summary="(extra) A new run copying this one as last stored: config, data, metrics, weights",
)
async def duplicate_run(run_id: str, manager: Manager) -> Response:
    return StrictJSONResponse((await manager.duplicate(run_id)).public(), status_code=201)

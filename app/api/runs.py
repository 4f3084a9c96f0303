"""/api/runs: create, list, read, change, drive and delete runs."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Query
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from app.api.deps import Manager
from app.api.paging import MAX_PAGE, first_epochs, page_of_runs
from app.api.responses import StrictJSONResponse, json_pieces_response
from app.api.routing import StrictJSONRoute
from app.api.schemas import (
    ERROR_RESPONSES,
    Metrics,
    Prediction,
    RunData,
    RunList,
    RunPublic,
    Snapshots,
    Weights,
)
from app.runs.models import PredictRequest, RunCreate, RunPatch, RunStep

router = APIRouter(prefix="/runs", tags=["runs"], route_class=StrictJSONRoute)


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: ERROR_RESPONSES[code] for code in codes}


@router.post(
    "",
    status_code=201,
    response_model=RunPublic,
    responses=_errors(409, 413, 422, 503),
    summary="Create a run (and start it unless `start` is false)",
)
async def create_run(
    manager: Manager, body: Annotated[RunCreate | None, Body()] = None
) -> Response:
    view = await manager.create(body if body is not None else RunCreate.model_validate({}))
    return StrictJSONResponse(view.public(), status_code=201)


@router.get(
    "",
    response_model=RunList,
    responses=_errors(422),
    summary="Runs, newest first: every run, or pages of `limit` after run `before`",
)
async def list_runs(
    manager: Manager,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
    before: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    page, next_before = page_of_runs(manager.list_runs(), limit, before)
    body: dict[str, Any] = {"runs": [view.public() for view in page]}
    if limit is not None:  # without `limit` the v1 body, unchanged
        body["next_before"] = next_before
    return StrictJSONResponse(body)


@router.get("/{run_id}", response_model=RunPublic, responses=_errors(404))
async def get_run(run_id: str, manager: Manager) -> Response:
    return StrictJSONResponse(manager.get(run_id).public())


@router.patch(
    "/{run_id}",
    response_model=RunPublic,
    responses=_errors(404, 413, 422, 503),
    summary="Change any field: live ones in place, the others re-initialise the run in place",
)
async def patch_run(run_id: str, body: RunPatch, manager: Manager) -> Response:
    return StrictJSONResponse((await manager.patch(run_id, body)).public())


@router.delete(
    "/{run_id}",
    status_code=204,
    response_class=Response,
    responses=_errors(404, 503),
    summary="Stop the run if it is running, then delete it and its data",
)
async def delete_run(run_id: str, manager: Manager) -> Response:
    await manager.delete(run_id)
    return Response(status_code=204)


@router.post(
    "/{run_id}/start",
    response_model=RunPublic,
    responses=_errors(404, 409, 503),
    summary="Start or continue training",
)
async def start_run(run_id: str, manager: Manager) -> Response:
    return StrictJSONResponse((await manager.start(run_id)).public())


@router.post(
    "/{run_id}/stop",
    response_model=RunPublic,
    responses=_errors(404, 503),
    summary="Pause once the current batch ends; a no-op unless running",
)
async def stop_run(run_id: str, manager: Manager) -> Response:
    return StrictJSONResponse((await manager.stop(run_id)).public())


@router.post(
    "/{run_id}/step",
    response_model=RunPublic,
    responses=_errors(404, 409, 422, 503),
    summary="Train min(epochs, config.epochs - epoch) epochs now (default 1, at most 10,000)",
)
async def step_run(
    run_id: str, manager: Manager, body: Annotated[RunStep | None, Body()] = None
) -> Response:
    epochs = body.epochs if body is not None else 1
    return StrictJSONResponse((await manager.step(run_id, epochs)).public())


@router.post(
    "/{run_id}/reset",
    response_model=RunPublic,
    responses=_errors(404, 503),
    summary="Stop if running and re-initialise from the seed: epoch 0, metrics cleared",
)
async def reset_run(run_id: str, manager: Manager) -> Response:
    return StrictJSONResponse((await manager.reset(run_id)).public())


@router.get(
    "/{run_id}/metrics",
    response_model=Metrics,
    responses=_errors(404, 422),
    summary="Columnar metrics of the epochs after `since` (at most `limit` of them)",
)
async def get_metrics(
    run_id: str,
    manager: Manager,
    since: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    return StrictJSONResponse(first_epochs(manager.metrics(run_id, since), limit))


@router.get(
    "/{run_id}/weights",
    response_model=Weights,
    responses=_errors(404, 422),
    summary="The current weights, or with `epoch` the kept snapshot at or before it",
)
async def get_weights(
    run_id: str, manager: Manager, epoch: Annotated[int | None, Query(ge=0)] = None
) -> Response:
    # Encoded off the event loop; a 5M-parameter net is ~100 MB of JSON, sent in pieces
    # so that no copy of the whole is made on the loop.
    return json_pieces_response(await manager.weights_json(run_id, epoch))


@router.get(
    "/{run_id}/snapshots",
    response_model=Snapshots,
    responses=_errors(404),
    summary="The epochs whose weights are kept (weight history), ascending",
)
async def get_snapshots(run_id: str, manager: Manager) -> Response:
    return StrictJSONResponse(manager.snapshots(run_id))


@router.get("/{run_id}/data", response_model=RunData, responses=_errors(404))
async def get_data(run_id: str, manager: Manager) -> Response:
    return _json(await manager.data_json(run_id))


@router.post(
    "/{run_id}/predict",
    response_model=Prediction,
    responses=_errors(404, 413, 422),
    summary="Outputs (and labels for classification) of the current weights",
)
async def predict(run_id: str, body: PredictRequest, manager: Manager) -> Response:
    n_inputs = manager.get(run_id).n_inputs
    for index, row in enumerate(body.inputs):
        if len(row) != n_inputs:
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("body", "inputs", index),
                        "msg": f"each row needs {n_inputs} numbers, got {len(row)}",
                    }
                ]
            )
    inputs = np.asarray(body.inputs, dtype=np.float64).reshape(len(body.inputs), n_inputs)
    return _json(await manager.predict_json(run_id, inputs))


def _json(body: bytes) -> Response:
    """Strict JSON the manager encoded already (off the event loop)."""
    return Response(body, media_type="application/json")

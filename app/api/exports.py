"""/api/runs: a run's data in and out (API.md v1.1 "Editing weights, importing and
exporting"): export.npz, metrics.csv, data.csv and `POST /api/runs/import`.

Every file is built off the event loop (a 5-million-parameter export takes a moment);
the downloads name themselves `<run name>-epoch<E>.<ext>`."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.deps import Manager
from app.api.responses import StrictJSONResponse
from app.api.routing import StrictJSONRoute
from app.api.schemas import ERROR_RESPONSES, RunPublic
from app.runs import ProblemError
from app.runs.exports import (
    data_csv,
    export_npz,
    imported_problem,
    metrics_csv,
    parse_export,
)

router = APIRouter(prefix="/runs", tags=["runs"], route_class=StrictJSONRoute)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: ERROR_RESPONSES[code] for code in codes}


def download_name(name: str, epoch: int, suffix: str) -> str:
    """`<run name>-epoch<E><suffix>` (the name as the user typed it)."""
    return f"{name}-epoch{epoch}{suffix}"


def attachment(filename: str) -> dict[str, str]:
    """A Content-Disposition header: an ASCII fallback and the UTF-8 name (RFC 6266)."""
    fallback = _UNSAFE.sub("_", filename).strip("_") or "run"
    return {
        "content-disposition": f'attachment; filename="{fallback}"; '
        f"filename*=UTF-8''{quote(filename, safe='')}"
    }


def _file(body: bytes | str, media_type: str, filename: str) -> Response:
    return Response(body, media_type=media_type, headers=attachment(filename))


_FILE = {200: {"content": {"application/octet-stream": {}}}}
_CSV = {200: {"content": {"text/csv": {}}}}


@router.get(
    "/{run_id}/export.npz",
    response_class=Response,
    responses={**_FILE, **_errors(404)},
    summary="The run as an .npz: W1, b1, …, layer_sizes, epoch, config (and a custom "
    "dataset's x, y)",
)
async def export_run(run_id: str, manager: Manager) -> Response:
    source = manager.export_source(run_id)
    body = await asyncio.to_thread(export_npz, source)
    name = download_name(source.config["name"], source.epoch, ".npz")
    return _file(body, "application/octet-stream", name)


@router.get(
    "/{run_id}/metrics.csv",
    response_class=Response,
    responses={**_CSV, **_errors(404)},
    summary="Every epoch's metrics as CSV (empty cells for null)",
)
async def metrics_file(run_id: str, manager: Manager) -> Response:
    view = manager.get(run_id)
    text = await asyncio.to_thread(metrics_csv, manager.metrics(run_id))
    return _file(text, "text/csv", download_name(view.name, view.epoch, "-metrics.csv"))


@router.get(
    "/{run_id}/data.csv",
    response_class=Response,
    responses={**_CSV, **_errors(404)},
    summary="The dataset as CSV: split, x1…xN, y (label) or y1…yK; train rows first",
)
async def data_file(run_id: str, manager: Manager) -> Response:
    view = manager.get(run_id)
    data = manager.data(run_id)
    text = await asyncio.to_thread(data_csv, data, view.task)
    return _file(text, "text/csv", f"{view.name}-data.csv")


@router.post(
    "/import",
    status_code=201,
    response_model=RunPublic,
    responses=_errors(409, 413, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
    summary="A new `created` run from an export.npz (its config, its weights as initial_weights)",
)
async def import_run(request: Request, manager: Manager) -> Response:
    body = await request.body()
    create = await asyncio.to_thread(parse_export, body)
    try:
        view = await manager.create(create)
    except ProblemError as exc:
        raise imported_problem(exc) from None
    return StrictJSONResponse(view.public(), status_code=201)

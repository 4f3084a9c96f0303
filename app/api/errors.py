"""Every error the API can answer, mapped in one place.

All error bodies are strict JSON with a human-readable ``detail``:
- request validation → 422, FastAPI's list shape (``type``, ``loc``, ``msg``)
  but without the echoed ``input``/``ctx``, which may hold NaN, bytes or
  arbitrary objects that strict JSON cannot carry;
- ``ProblemError`` from the run layer → its status, ``detail`` and ``field``;
- ``StorageError`` (disk full, read-only database) → 503;
- HTTP errors (404 unknown route, 405) keep FastAPI's handler: ``{"detail": str}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import Response

from app.api.responses import StrictJSONResponse
from app.runs import ProblemError, StorageError
from app.runs.messages import plain_message


def validation_detail(errors: Any) -> list[dict[str, Any]]:
    """FastAPI's error list with only the JSON-safe keys kept, each `msg` in plain words
    naming its field ("layer 2: at most 1,024 neurons")."""
    detail = []
    for error in errors:
        loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
        detail.append(
            {
                "type": str(error.get("type", "value_error")),
                "loc": loc,
                "msg": plain_message(error),
            }
        )
    return detail


async def _validation_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):
        raise exc
    return StrictJSONResponse({"detail": validation_detail(exc.errors())}, status_code=422)


async def _problem_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ProblemError):
        raise exc
    body: dict[str, Any] = {"detail": exc.detail}
    if exc.field is not None:
        body["field"] = exc.field
    return StrictJSONResponse(body, status_code=exc.status_code)


async def _storage_error(request: Request, exc: Exception) -> Response:
    return StrictJSONResponse(
        {"detail": f"storage unavailable: {exc}"},
        status_code=503,
        headers={"retry-after": "5"},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(StorageError, _storage_error)

"""An APIRoute that parses JSON bodies strictly and fast.

Python's ``json`` (which FastAPI uses) accepts the bare tokens ``NaN`` and
``Infinity`` and turns ``1e400`` into ``inf``; those would reach the models as
non-finite floats. This route parses with orjson (fast, strict); when orjson
refuses a body that the lenient parser accepts, it locates the offending value
and answers 422 naming its field. Malformed JSON (including nesting too deep
for either parser) is 422 ``json_invalid``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            if _is_json(request.headers.get("content-type")):
                body = await request.body()
                if body:
                    # Starlette's Request.json() returns this cached value.
                    request._json = _parse(body)
            return await handler(request)

        return strict_handler


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        strict_error = exc
    try:
        lenient = json.loads(body)
        problem = _find_unencodable(lenient, ())
    except (ValueError, RecursionError):
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", strict_error.pos),
                    "msg": f"JSON decode error: {strict_error.msg}",
                    "input": None,
                }
            ]
        ) from None
    if problem is not None:
        loc, message = problem
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", *loc), "msg": message, "input": None}]
        )
    # Accepted by the lenient parser only for harmless reasons (e.g. an
    # integer beyond 64 bits, which the models then range-check).
    return lenient


def _find_unencodable(
    value: Any, loc: tuple[str | int, ...]
) -> tuple[tuple[str | int, ...], str] | None:
    """The first non-finite number or unencodable string in ``value``, with its path."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return loc, "Input should be a finite number (NaN and Infinity are not JSON)"
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return loc, "Input should be valid Unicode text (lone surrogate escape)"
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_unencodable(item, (*loc, index))
            if found is not None:
                return found
    elif isinstance(value, dict):
        for key, item in value.items():
            found = _find_unencodable(key, loc) or _find_unencodable(item, (*loc, key))
            if found is not None:
                return found
    return None

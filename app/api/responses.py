"""Strict-JSON responses: orjson, with every non-finite float written as ``null``.

FastAPI's ``ORJSONResponse`` is deprecated in the FastAPI this project pins
(importing it warns, and the tests turn warnings into errors), so the API
uses this small subclass instead. orjson writes NaN/±Inf as ``null``, which is
exactly what API.md asks for, and NumPy arrays/scalars directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps(content: Any) -> bytes:
    """Encode ``content`` as strict JSON (non-finite floats -> null)."""
    return orjson.dumps(content, option=_OPTIONS)


class StrictJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def json_pieces_response(pieces: list[bytes]) -> Response:
    """JSON encoded already, in pieces that join to the whole text (``RunManager.
    weights_json``): sent one by one, so the loop never copies a 100 MB body whole."""

    async def each() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    length = str(sum(len(piece) for piece in pieces))
    return StreamingResponse(
        each(), media_type="application/json", headers={"content-length": length}
    )

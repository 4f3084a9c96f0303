"""Strict-JSON responses: orjson, with every non-finite float written as ``null``.

FastAPI's ``ORJSONResponse`` is deprecated in the FastAPI this project pins
(importing it warns, and the tests turn warnings into errors), so the API
uses this small subclass instead. orjson writes NaN/±Inf as ``null``, which is
exactly what API.md asks for, and NumPy arrays/scalars directly.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps(content: Any) -> bytes:
    """Encode ``content`` as strict JSON (non-finite floats -> null)."""
    return orjson.dumps(content, option=_OPTIONS)


class StrictJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)

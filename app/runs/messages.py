"""Validation errors in plain words, naming the field: one source for the API and the UI.

Pydantic says "Input should be less than or equal to 1024" at ("hidden_layers", 1);
a learner should read "layer 2: at most 1,024 neurons".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from app.runs.errors import ProblemError

_KINDS = frozenset(
    {"circle", "xor", "gauss", "spiral", "moons", "plane", "sine", "teacher", "custom"}
)


def field_path(loc: Sequence[Any]) -> str:
    """A dotted field name from a pydantic location, without the request's "body" and the
    dataset's kind tag: ("body", "dataset", "spiral", "noise") -> "dataset.noise"."""
    parts = [str(p) for p in loc if p != "body"]
    if len(parts) >= 2 and parts[0] == "dataset" and parts[1] in _KINDS:
        del parts[1]
    return ".".join(parts)


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def plain_message(error: Mapping[str, Any]) -> str:
    """One pydantic error (type, loc, msg, ctx) as a sentence naming its field."""
    loc = [p for p in error.get("loc", ()) if p != "body"]
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    msg = str(error.get("msg", ""))
    if loc[:1] == ["hidden_layers"] and len(loc) == 2 and isinstance(loc[1], int):
        layer = f"layer {loc[1] + 1}"
        if kind == "less_than_equal":
            return f"{layer}: at most {_number(ctx.get('le'))} neurons"
        if kind == "greater_than_equal":
            least = ctx.get("ge", 1)
            return f"{layer}: at least {_number(least)} neuron{'' if least == 1 else 's'}"
        if kind.startswith("int"):
            return f"{layer}: the number of neurons must be a whole number"
    if loc == ["hidden_layers"] and kind == "too_long":
        return f"at most {ctx.get('max_length', 10)} hidden layers"
    if kind == "extra_forbidden":
        return f"unknown field {field_path(loc)!r}"
    if kind == "missing":
        return f"{field_path(loc)}: required"
    for old, new in (("Value error, ", ""), ("Input should be", "must be")):
        msg = msg.replace(old, new)
    name = field_path(loc).replace("_", " ")
    return f"{name}: {msg}" if name else msg


def plain_messages(errors: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(field, sentence) for each error."""
    return [(field_path(e.get("loc", ())), plain_message(e)) for e in errors]


def problem_from_validation(exc: ValidationError) -> ProblemError:
    """A 422 naming the first field at fault (all of them in the detail)."""
    messages = plain_messages(exc.errors())
    field = messages[0][0] if messages else None
    return ProblemError(422, "; ".join(m for _, m in messages), field or None)

# ruff: noqa: RUF001 -- UI text uses real typography (minus, en dash, arrows)
"""Editing the network on its diagram: layers, neurons, input features and single weights.

Each route answers with a small HTML message (``partials/diagram_message.html``)
or the weight popover, with a real status code (4xx when refused) so the
script that sent it (static/diagram-edit.js) and tests can tell. Structural
changes go through ``RunManager.patch`` (the run re-initialises in place and
keeps playing); a weight through ``RunManager.put_weights``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from app.nn.features import FEATURE_LABELS, FEATURES
from app.runs.errors import ProblemError
from app.runs.messages import plain_message
from app.runs.models import RunPatch
from app.ui.diagram import exact

router = APIRouter(include_in_schema=False)

PAUSE_TO_EDIT = "Pause the run to edit a weight"


def _manager(request: Request) -> Any:
    return request.app.state.manager


def _message(request: Request, text: str, status_code: int = 200) -> HTMLResponse:
    context = {"text": text, "error": status_code >= 400}
    return request.app.state.ui.templates.TemplateResponse(  # type: ignore[no-any-return]
        request, "partials/diagram_message.html", context, status_code=status_code
    )


# ---------------------------------------------------------------- layers, neurons, features


def parse_hidden_layers(raw: str) -> list[int]:
    """'8,9' → [8, 9]; '' → [] (no hidden layer). ValueError for anything else."""
    parts = [p.strip() for p in raw.split(",")] if raw.strip() else []
    return [int(p) for p in parts]


def structure_error(errors: Sequence[Mapping[str, Any]]) -> str:
    """A RunPatch ValidationError in plain words, naming the layer ('layer 2: at most …')."""
    return "; ".join(plain_message(err) for err in errors)


def _changes(form: Mapping[str, Any]) -> dict[str, Any] | str:
    """The PATCH body a diagram control asks for, or a message saying what is wrong."""
    body: dict[str, Any] = {}
    if "hidden_layers" in form:
        try:
            body["hidden_layers"] = parse_hidden_layers(str(form["hidden_layers"]))
        except ValueError:
            return "hidden layers: whole numbers of neurons, separated by commas"
    if "features" in form:
        names = [p.strip() for p in str(form["features"]).split(",") if p.strip()]
        if not names:
            return "Keep at least one input feature: the network needs an input"
        unknown = [n for n in names if n not in FEATURES]
        if unknown:
            return f"features: unknown feature {unknown[0]!r}"
        body["features"] = [f for f in FEATURES if f in names]
    if not body:
        return "Nothing to change"
    return body


@router.post("/ui/runs/{run_id}/structure", response_class=HTMLResponse)
async def change_structure(request: Request, run_id: str) -> HTMLResponse:
    """A ± button or an input feature node: PATCH hidden_layers / features."""
    body = _changes(await request.form())
    if isinstance(body, str):
        return _message(request, body, 422)
    try:
        view = await _manager(request).patch(run_id, RunPatch.model_validate(body))
    except ValidationError as exc:
        return _message(request, structure_error(exc.errors()), 422)
    except ProblemError as exc:
        return _message(request, exc.detail, exc.status_code)
    shape = "–".join(str(n) for n in view.layer_sizes)
    text = f"Network {shape}: new weights, from epoch 0"
    if "features" in body:
        text += " · inputs " + ", ".join(FEATURE_LABELS[f] for f in body["features"])
    return _message(request, text)


# ---------------------------------------------------------------- one weight


@dataclass(frozen=True)
class WeightKey:
    """One parameter: layer (1-based), row (its neuron) and col (its input; None: the bias)."""

    layer: int
    row: int
    col: int | None

    @classmethod
    def parse(cls, raw: str, layer_sizes: Sequence[int]) -> WeightKey:
        """'2.0.3' (weight) or '2.0' (bias), checked against the network's shape."""
        try:
            parts = [int(p) for p in raw.split(".")]
        except ValueError:
            parts = []
        if len(parts) not in (2, 3):
            raise ValueError("weight: say which one, as layer.row.col")
        layer, row = parts[0], parts[1]
        col = parts[2] if len(parts) == 3 else None
        ok = 1 <= layer < len(layer_sizes) and 0 <= row < layer_sizes[layer]
        if not ok or (col is not None and not 0 <= col < layer_sizes[layer - 1]):
            raise ValueError("weight: this network has no such weight")
        return cls(layer, row, col)

    def describe(self, features: Sequence[str] | None, n_layers: int) -> str:
        """'From x₁ to layer 1, neuron 3', 'Bias of output 1'."""
        target = (
            f"output {self.row + 1}"
            if self.layer == n_layers
            else f"layer {self.layer}, neuron {self.row + 1}"
        )
        if self.col is None:
            return f"Bias of {target}"
        if self.layer == 1:
            source = FEATURE_LABELS[features[self.col]] if features else f"input {self.col + 1}"
        else:
            source = f"layer {self.layer - 1}, neuron {self.col + 1}"
        return f"From {source} to {target}"

    def get(self, layers: Sequence[Mapping[str, Any]]) -> float:
        layer = layers[self.layer - 1]
        if self.col is None:
            return float(layer["biases"][self.row])
        return float(layer["weights"][self.row][self.col])

    def set(self, layers: list[dict[str, Any]], value: float) -> None:
        layer = layers[self.layer - 1]
        if self.col is None:
            layer["biases"][self.row] = value
        else:
            layer["weights"][self.row][self.col] = value


def _key(request: Request, run_id: str, raw: str) -> tuple[Any, WeightKey]:
    """The run's view and the parsed key (ProblemError 404, ValueError for a bad key)."""
    view = _manager(request).get(run_id)
    key = WeightKey.parse(raw, list(view.layer_sizes))
    if key.col is None and not view.config.get("use_bias", True):
        raise ValueError("weight: this network has no biases")
    return view, key


@router.get("/ui/runs/{run_id}/weight", response_class=HTMLResponse)
async def weight_editor(request: Request, run_id: str, key: str = "") -> HTMLResponse:
    """The popover's form: the exact current value, an input and "Set"."""
    try:
        view, wk = _key(request, run_id, key)
    except ProblemError as exc:
        return _message(request, exc.detail, exc.status_code)
    except ValueError as exc:
        return _message(request, str(exc), 422)
    value = wk.get(_manager(request).weights(run_id)["layers"])
    context = {
        "key": key,
        "label": wk.describe(view.config.get("features"), len(view.layer_sizes) - 1),
        "symbol": "b" if wk.col is None else "w",
        "value": exact(value),
        "running": str(view.status) == "running",
        "pause_text": PAUSE_TO_EDIT,
    }
    return request.app.state.ui.templates.TemplateResponse(  # type: ignore[no-any-return]
        request, "partials/weight_popover.html", context
    )


@router.post("/ui/runs/{run_id}/weight", response_class=HTMLResponse)
async def set_weight(request: Request, run_id: str) -> HTMLResponse:
    """Replace one weight (or bias): the current weights with that one value changed."""
    form = await request.form()
    try:
        view, wk = _key(request, run_id, str(form.get("key", "")))
        value = float(str(form.get("value", "")).strip().replace("−", "-"))
    except ProblemError as exc:
        return _message(request, exc.detail, exc.status_code)
    except ValueError as exc:
        text = str(exc) if str(exc).startswith("weight:") else "value: enter a number"
        return _message(request, text, 422)
    if not math.isfinite(value):
        return _message(request, "value: enter a finite number", 422)
    if str(view.status) == "running":
        return _message(request, PAUSE_TO_EDIT, 409)
    manager = _manager(request)
    layers = manager.weights(run_id)["layers"]
    wk.set(layers, value)
    try:
        await manager.put_weights(run_id, layers)
    except ProblemError as exc:
        text = PAUSE_TO_EDIT if exc.status_code == 409 else exc.detail
        return _message(request, text, exc.status_code)
    label = wk.describe(view.config.get("features"), len(view.layer_sizes) - 1)
    symbol = "b" if wk.col is None else "w"
    return _message(request, f"{label}: {symbol} = {exact(value)}")

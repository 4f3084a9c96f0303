"""What a PATCH does to a run's config (API.md v1.1 "The playground loop"), as pure logic.

Live fields change a run in place; any other field that really changes is structural,
and the run is re-initialised to exactly what `POST /api/runs` with the updated config
would create. This module works out that config; RunManager applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from app.nn.datasets import Dataset
from app.runs.messages import problem_from_validation
from app.runs.models import LIVE_FIELDS, RunCreate
from app.runs.record import Run, build_dataset, prepare_run


@dataclass(frozen=True)
class Reshaped:
    """A run re-made from its patched config: its new record (same id) and custom data."""

    run: Run
    custom: dict[str, np.ndarray] | None


def structural_changes(run: Run, changes: dict[str, Any]) -> dict[str, Any]:
    """The sent fields that re-initialise the run: not live, and not equal to the current
    value (a structural field sent with its current value changes nothing). `dataset`
    counts when any field it names differs, or when it is custom data (new points)."""
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if name in LIVE_FIELDS:
            continue
        if name == "dataset":
            current = run.config.dataset
            if value.get("kind") == "custom" or any(current.get(k) != v for k, v in value.items()):
                out[name] = value
        elif getattr(run.config, name, None) != value:
            out[name] = value
    return out


def merged_dataset(
    current: dict[str, Any], patch: dict[str, Any], custom: dict[str, np.ndarray] | None
) -> dict[str, Any]:
    """The dataset spec after a PATCH: merged into the current one when `kind` is absent
    or unchanged (custom data keeps its points), replaced when `kind` changes."""
    if patch.get("kind", current["kind"]) != current["kind"]:
        return dict(patch)
    merged = {**current, **patch}
    if current["kind"] == "custom" and "x" not in patch and custom is not None:
        merged.setdefault("x", custom["x"].tolist())
        merged.setdefault("y", custom["y"].tolist())
    return merged


def reshape(run: Run, changes: dict[str, Any], custom: dict[str, np.ndarray] | None) -> Reshaped:
    """The run re-initialised with every change applied (live ones included). Builds the
    dataset: call it off the event loop. ProblemError(422) names the field at fault."""
    config = run.config.public()
    config.update(changes)
    spec = merged_dataset(run.config.dataset, changes.get("dataset", {}), custom)
    config["dataset"] = spec
    try:
        body = RunCreate.model_validate(config)
    except ValidationError as exc:
        raise problem_from_validation(exc) from None
    data: Dataset = build_dataset(body.dataset.model_dump())
    raw_inputs = 2 if run.config.features else run.layer_sizes[0]
    if data.n_inputs != raw_inputs and "features" not in changes:
        body.features = None  # the old features do not fit the new inputs
    if (data.task, data.n_outputs) != (run.task, run.layer_sizes[-1]):
        # A new task: the head is chosen by the task again, unless this PATCH sets it.
        body.output_activation = changes.get("output_activation")
        body.loss = changes.get("loss")
    new, new_custom = prepare_run(body, data, run_id=run.id)
    new.created_at = run.created_at
    return Reshaped(new, new_custom)

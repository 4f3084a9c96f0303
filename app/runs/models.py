"""Request schemas (API.md `POST /api/runs`, PATCH, step, predict), run statuses and views.

Every model forbids unknown fields and non-finite numbers, so a field that does
not belong to a dataset kind, a typo or a NaN is a 422 naming the field. Limits
that need the dataset itself (parameter count, head pairing, custom data) are
checked by the manager at create time and raised as ``ProblemError``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from app.runs.errors import ProblemError
from app.storage.store import finite_or_none

__all__ = [
    "DatasetSpec",
    "PredictRequest",
    "ProblemError",
    "RunCreate",
    "RunPatch",
    "RunStatus",
    "RunStep",
    "RunView",
]

MAX_PARAMS = 5_000_000
MAX_SAMPLES = 100_000
MAX_FEATURES = 4_096
MAX_EPOCHS = 10_000_000
MAX_STEP_EPOCHS = 10_000
MAX_PREDICT_ROWS = 10_000

Activation = Literal["sigmoid", "tanh", "relu", "leaky_relu", "linear"]
OutputActivation = Literal["sigmoid", "softmax", "linear"]
Loss = Literal["mse", "cross_entropy"]
Optimizer = Literal["sgd", "momentum", "adam"]
Init = Literal["xavier", "he", "uniform", "normal"]
DType = Literal["float32", "float64"]

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


class RunStatus(StrEnum):
    created = "created"
    running = "running"
    stopped = "stopped"
    completed = "completed"
    diverged = "diverged"
    failed = "failed"
    interrupted = "interrupted"


# ---- datasets: one model per family, discriminated on `kind` ----------------------------


class _Generated(BaseModel):
    model_config = _STRICT
    n_samples: int = Field(400, ge=10, le=MAX_SAMPLES)
    noise: float = Field(0.1, ge=0, le=1)
    test_fraction: float = Field(0.2, ge=0, le=0.9)
    seed: int = Field(0, ge=0)


class PlainDataset(_Generated):
    """2-D binary classification kinds without a class count."""

    kind: Literal["circle", "xor", "moons"]


class MultiClassDataset(_Generated):
    kind: Literal["gauss", "spiral"]
    n_classes: int = Field(2, ge=2, le=8)


class RegressionDataset(_Generated):
    kind: Literal["plane", "sine"]


class TeacherDataset(_Generated):
    kind: Literal["teacher"]
    teacher_layers: list[Annotated[int, Field(ge=1, le=1024)]] = Field(
        default_factory=lambda: [3, 5, 2], min_length=2, max_length=10
    )
    teacher_activation: Activation = "sigmoid"


class CustomDataset(BaseModel):
    """User data: inputs used as given; the split still comes from `seed`.

    Row widths, label values and the x/y pairing are checked by
    `app.nn.datasets.make_dataset` at create time (ProblemError naming
    `dataset.x` / `dataset.y`), so there is one source of truth for them.
    """

    model_config = _STRICT
    kind: Literal["custom"]
    task: Literal["classification", "regression"]
    x: list[list[float]] = Field(min_length=2, max_length=MAX_SAMPLES)
    y: list[int] | list[list[float]] | list[float] = Field(min_length=2, max_length=MAX_SAMPLES)
    test_fraction: float = Field(0.2, ge=0, le=0.9)
    seed: int = Field(0, ge=0)


DatasetSpec = Annotated[
    PlainDataset | MultiClassDataset | RegressionDataset | TeacherDataset | CustomDataset,
    Field(discriminator="kind"),
]


def _default_dataset() -> MultiClassDataset:
    return MultiClassDataset.model_validate({"kind": "spiral"})


# ---- runs --------------------------------------------------------------------------------


class RunCreate(BaseModel):
    """Body of `POST /api/runs` (API.md table: defaults and limits)."""

    model_config = _STRICT
    name: str | None = Field(None, max_length=80)
    dataset: DatasetSpec = Field(default_factory=_default_dataset)
    hidden_layers: list[Annotated[int, Field(ge=1, le=1024)]] = Field(
        default_factory=lambda: [8, 8], max_length=10
    )
    activation: Activation = "tanh"
    output_activation: OutputActivation | None = None
    loss: Loss | None = None
    learning_rate: float = Field(0.03, gt=0, le=10)
    optimizer: Optimizer = "sgd"
    momentum: float = Field(0.9, ge=0, lt=1)
    batch_size: int | None = Field(10, ge=1)
    epochs: int = Field(1000, ge=1, le=MAX_EPOCHS)
    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)
    use_bias: StrictBool = True
    init: Init = "xavier"
    seed: int = Field(0, ge=0)
    dtype: DType = "float32"
    max_epochs_per_second: float | None = Field(None, gt=0)
    start: StrictBool = True


def _not_nullable(schema: dict[str, Any]) -> None:
    """JSON schema of an optional field that may be omitted but not be null."""
    options = [o for o in schema.pop("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options


class RunPatch(BaseModel):
    """Body of `PATCH /api/runs/{id}`; a field left out is unchanged.

    `max_epochs_per_second: null` removes the speed limit; the other fields may
    not be null.
    """

    model_config = _STRICT
    # These may be left out but not be null (see _no_null), and the schema says so.
    name: str | None = Field(None, max_length=80, json_schema_extra=_not_nullable)
    learning_rate: float | None = Field(None, gt=0, le=10, json_schema_extra=_not_nullable)
    epochs: int | None = Field(None, ge=1, le=MAX_EPOCHS, json_schema_extra=_not_nullable)
    max_epochs_per_second: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _no_null(self) -> RunPatch:
        for name in ("name", "learning_rate", "epochs"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} may not be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, with their values."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class RunStep(BaseModel):
    """Body of `POST /api/runs/{id}/step`."""

    model_config = _STRICT
    epochs: int = Field(1, ge=1, le=MAX_STEP_EPOCHS)


class PredictRequest(BaseModel):
    """Body of `POST /api/runs/{id}/predict` (the width is checked against the run)."""

    model_config = _STRICT
    inputs: list[list[float]] = Field(min_length=1, max_length=MAX_PREDICT_ROWS)


# ---- the API's Run object ----------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class RunView:
    """An immutable picture of a run; `public()` is the API's Run object."""

    id: str
    name: str
    status: RunStatus
    message: str | None
    config: dict[str, Any]  # public config: every RunCreate field but `start`, defaults filled
    layer_sizes: list[int]
    task: str
    n_params: int
    epoch: int
    train_loss: float | None
    test_loss: float | None
    train_accuracy: float | None
    test_accuracy: float | None
    created_at: datetime
    updated_at: datetime

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": str(self.status),
            "message": self.message,
            "config": copy.deepcopy(self.config),
            "layer_sizes": list(self.layer_sizes),
            "task": self.task,
            "n_params": self.n_params,
            "epoch": self.epoch,
            "train_loss": finite_or_none(self.train_loss),
            "test_loss": finite_or_none(self.test_loss),
            "train_accuracy": finite_or_none(self.train_accuracy),
            "test_accuracy": finite_or_none(self.test_accuracy),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }

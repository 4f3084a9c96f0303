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

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    create_model,
    field_validator,
    model_validator,
)

from app.nn.features import FEATURES, check_features
from app.nn.metrics import finite_or_none
from app.runs.errors import ProblemError
from app.runs.worker_messages import SET_LIVE_FIELDS

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
ErrorPropagation = Literal["chain_rule", "weights_only"]
FeatureName = Literal[FEATURES]  # type: ignore[valid-type]

# PATCH changes these without re-initialising the run (API.md v1.1); any other field is
# structural: the run is re-initialised in place.
# The name is the server's alone; the others a training worker takes as they come.
LIVE_FIELDS = SET_LIVE_FIELDS | {"name"}

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


class RunStatus(StrEnum):
    created = "created"
    running = "running"
    stopped = "stopped"
    completed = "completed"
    diverged = "diverged"
    failed = "failed"
    interrupted = "interrupted"
    queued = "queued"  # a sweep's run waiting for a training slot (app.runs.sweeps)

    # The rules of the statuses, here alone (the manager, the UI and the CLI use them).

    @property
    def is_active(self) -> bool:
        """Training, or waiting for a slot to train (a start is a no-op)."""
        return self in _ACTIVE

    @property
    def is_final(self) -> bool:
        """Settled: no worker trains it and none will until a command (the CLI waits
        for it); `created` has not begun, so it is not final."""
        return self in _FINAL

    @property
    def needs_reset(self) -> bool:
        """Diverged or failed: only a reset (or a structural PATCH) trains it again."""
        return self in _NEEDS_RESET

    @property
    def can_step(self) -> bool:
        """`POST /step` is allowed (else 409)."""
        return self in _STEPPABLE

    def can_start(self, epoch: int, epochs: int) -> bool:
        """`POST /start` would train (running and queued runs are already on their way;
        diverged and failed need a reset; a completed run needs more `epochs`)."""
        if self == RunStatus.completed:
            return epoch < epochs
        return self in _STEPPABLE


_ACTIVE = frozenset({RunStatus.running, RunStatus.queued})
_NEEDS_RESET = frozenset({RunStatus.diverged, RunStatus.failed})
_STEPPABLE = frozenset({RunStatus.created, RunStatus.stopped, RunStatus.interrupted})
_FINAL = frozenset(RunStatus) - _ACTIVE - {RunStatus.created}


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
    teacher_weight_scale: float = Field(1.0, ge=0.1, le=10)


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


# ---- training controls (API.md v1.1) -------------------------------------------------------


class StepSchedule(BaseModel):
    """PyTorch's StepLR: lr·gamma^floor((e-1)/step_size)."""

    model_config = _STRICT
    kind: Literal["step"]
    step_size: int = Field(ge=1)
    gamma: float = Field(gt=0, le=1)


class ExponentialSchedule(BaseModel):
    """PyTorch's ExponentialLR: lr·gamma^(e-1)."""

    model_config = _STRICT
    kind: Literal["exponential"]
    gamma: float = Field(gt=0, le=1)


class CosineSchedule(BaseModel):
    """PyTorch's CosineAnnealingLR (closed form, T_max = period); `period` defaults to
    the run's epochs, filled in when the schedule is set."""

    model_config = _STRICT
    kind: Literal["cosine"]
    period: int | None = Field(None, ge=1)
    min_lr: float = Field(0.0, ge=0)


LrSchedule = Annotated[
    StepSchedule | ExponentialSchedule | CosineSchedule, Field(discriminator="kind")
]


class EarlyStopping(BaseModel):
    model_config = _STRICT
    patience: int = Field(ge=1, le=100_000)
    min_delta: float = Field(0.0, ge=0)


def filled_schedule(schedule: dict[str, Any] | None, epochs: int) -> dict[str, Any] | None:
    """A schedule as the config shows it: a cosine without `period` gets the run's epochs."""
    if schedule is not None and schedule["kind"] == "cosine" and schedule.get("period") is None:
        return {**schedule, "period": int(epochs)}
    return schedule


class LayerIn(BaseModel):
    """One layer's weights as `/weights` gives them (shapes are checked against the run)."""

    model_config = _STRICT
    weights: list[list[float]]
    biases: list[float] | None


class InitialWeights(BaseModel):
    model_config = _STRICT
    layers: list[LayerIn] = Field(max_length=11)


# ---- runs --------------------------------------------------------------------------------


def _no_nul(text: str | None) -> str | None:
    # A database's text column cannot hold NUL (PostgreSQL refuses it; SQLite would cut
    # names short in some tools): refused here, on every store, in words.
    if text is not None and "\x00" in text:
        raise ValueError("must not contain the NUL character (\\u0000)")
    return text


# A run's or a sweep's name, as stored.
Name = Annotated[str | None, Field(max_length=80), AfterValidator(_no_nul)]


class RunCreate(BaseModel):
    """Body of `POST /api/runs` (API.md table: defaults and limits)."""

    model_config = _STRICT
    name: Name = None
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
    features: list[FeatureName] | None = Field(None, min_length=1, max_length=len(FEATURES))
    error_propagation: ErrorPropagation = "chain_rule"
    lr_schedule: LrSchedule | None = None
    target_loss: float | None = Field(None, gt=0)
    early_stopping: EarlyStopping | None = None
    initial_weights: InitialWeights | None = Field(
        None, description="start from these weights (as /weights), not the initialiser's"
    )
    start: StrictBool = True

    @field_validator("features")
    @classmethod
    def _distinct_features(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            check_features(value)
        return value


def _not_nullable(schema: dict[str, Any]) -> None:
    """JSON schema of an optional field that may be omitted but not be null."""
    options = [o for o in schema.pop("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options


def _patch_field(name: str) -> tuple[Any, Any]:
    """RunCreate's field `name` as an optional PATCH field: same type and bounds, default
    None; fields whose creation default is not null may be left out but not be null."""
    info = RunCreate.model_fields[name]
    field = copy.copy(info)
    field.default, field.default_factory = None, None
    if name in _NOT_NULLABLE:
        field.json_schema_extra = _not_nullable
    return info.annotation | None, field


# null means "the default" for these (chosen by task, full batch, no limit, raw inputs).
_NULLABLE = frozenset(
    {
        "output_activation",
        "loss",
        "batch_size",
        "max_epochs_per_second",
        "features",
        "lr_schedule",
        "target_loss",
        "early_stopping",
        "initial_weights",
    }
)
_NOT_NULLABLE = frozenset(RunCreate.model_fields) - _NULLABLE - {"start"}


class _PatchBase(BaseModel):
    model_config = _STRICT

    @model_validator(mode="after")
    def _no_null(self) -> _PatchBase:
        for name in self.model_fields_set & _NOT_NULLABLE:
            if getattr(self, name) is None:
                raise ValueError(f"{name} may not be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, with their values (`dataset` as the partial dict,
        a schedule or stop rule as a dict)."""
        out = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            out[name] = value.model_dump() if isinstance(value, BaseModel) else value
        return out


RunPatch = create_model(  # type: ignore[call-overload]
    "RunPatch",
    __base__=_PatchBase,
    __doc__="""Body of `PATCH /api/runs/{id}`: any field of `POST /api/runs` but `start`;
    a field left out is unchanged. `dataset` may be partial: merged into the current
    dataset when its `kind` is absent or unchanged, replacing it when `kind` changes.""",
    dataset=(
        dict[str, Any] | None,
        Field(None, description="the dataset's fields to change", json_schema_extra=_not_nullable),
    ),
    **{
        name: _patch_field(name)
        for name in RunCreate.model_fields
        if name not in ("start", "dataset")
    },
)


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

    @property
    def n_inputs(self) -> int:
        """The raw inputs a prediction takes (2 when the network reads features of them)."""
        return 2 if self.config.get("features") else self.layer_sizes[0]

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
            "n_inputs": self.n_inputs,
            "epoch": self.epoch,
            "train_loss": finite_or_none(self.train_loss),
            "test_loss": finite_or_none(self.test_loss),
            "train_accuracy": finite_or_none(self.train_accuracy),
            "test_accuracy": finite_or_none(self.test_accuracy),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }

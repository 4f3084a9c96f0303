"""Pydantic schemas of the API's bodies (``RunPublic`` & co.) for validation and /docs.

Request bodies (``RunCreate``, ``RunPatch``, ``RunStep``, ``PredictRequest``) live
in ``app.runs.models`` because the manager validates against them too.
Responses are built by the manager as JSON-ready dicts and sent as strict JSON;
the response models document them in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

RunStatusName = Literal[
    "created", "running", "stopped", "completed", "diverged", "failed", "interrupted", "queued"
]


class RunPublic(BaseModel):
    """The API's Run object (API.md)."""

    id: str
    name: str
    status: RunStatusName
    message: str | None = None
    config: dict[str, Any] = Field(
        description="Every creation field but `start`, defaults filled (the dataset's too)."
    )
    layer_sizes: list[int] = Field(description="[n_in, h1, …, n_out]")
    task: Literal["classification", "regression"]
    n_params: int = Field(description="weights + biases")
    epoch: int
    train_loss: float | None = None
    test_loss: float | None = None
    train_accuracy: float | None = Field(None, description="null for regression")
    test_accuracy: float | None = Field(None, description="null for regression")
    created_at: str = Field(description="ISO-8601")
    updated_at: str = Field(description="ISO-8601")


class RunList(BaseModel):
    runs: list[RunPublic] = Field(description="newest first")
    next_before: str | None = Field(
        None, description="only with `limit`: pass as `before` for the next page; null on the last"
    )


class Metrics(BaseModel):
    """Columnar metrics: entry i of every list belongs to epoch ``epoch[i]``."""

    epoch: list[int]
    train_loss: list[float | None]
    test_loss: list[float | None]
    train_accuracy: list[float | None]
    test_accuracy: list[float | None]
    learning_rate: list[float | None] = Field(description="the rate each epoch trained with")


class Layer(BaseModel):
    weights: list[list[float | None]] = Field(description="shape (n_out, n_in)")
    biases: list[float | None] | None = Field(description="shape (n_out,); null without bias")


class Snapshots(BaseModel):
    epochs: list[int] = Field(description="the epochs whose weights are kept, ascending")


class Weights(BaseModel):
    epoch: int
    layers: list[Layer]


class DataSplit(BaseModel):
    x: list[list[float]] = Field(description="shape (n, n_inputs)")
    y: list[Any] = Field(description="class labels, or target rows (numbers for one output)")


class RunData(BaseModel):
    train: DataSplit
    test: DataSplit


class Prediction(BaseModel):
    outputs: list[list[float | None]] = Field(description="shape (n, n_out)")
    labels: list[int | None] | None = Field(
        None,
        description="classification only: argmax, or output ≥ 0.5 for one sigmoid output; "
        "null for a row whose outputs are not all finite",
    )


class DatasetInfo(BaseModel):
    kind: str
    # null for `custom`: its task is part of the data
    task: Literal["classification", "regression"] | None
    n_inputs: int | None
    n_outputs: int | None
    parameters: dict[str, dict[str, Any]]


class DatasetList(BaseModel):
    datasets: list[DatasetInfo]


class Health(BaseModel):
    status: Literal["ok"]


class ErrorBody(BaseModel):
    detail: Any = Field(description="a message, or FastAPI's list of field errors")
    field: str | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "unknown run"},
    409: {"model": ErrorBody, "description": "not allowed in the run's current status"},
    413: {"model": ErrorBody, "description": "request body over the size limit"},
    422: {"model": ErrorBody, "description": "invalid input; the field is named"},
    503: {"model": ErrorBody, "description": "storage unavailable (disk full, read-only)"},
}

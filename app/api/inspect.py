# ruff: noqa: RUF001 -- API docs use real typography (minus sign)
"""/api/runs/{id}/inspect: the numbers of one backprop step (an extra route, not in API.md).

One plain-SGD step on one batch of the training set in its stored order, with the
run's current weights; nothing is updated. Arrays are capped at ``limit`` (64) rows
and units, with ``truncated`` flags, so the answer stays small for any network.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from app.api.deps import Manager
from app.api.responses import StrictJSONResponse
from app.api.routing import StrictJSONRoute
from app.api.schemas import ERROR_RESPONSES, Weights
from app.runs.inspecting import apply_step

router = APIRouter(prefix="/runs", tags=["runs"], route_class=StrictJSONRoute)

Rows = list[list[float | None]]
Vector = list[float | None]


class InspectLayer(BaseModel):
    """Layer l (1-based in the article, index l-1 here); rows are the batch's samples."""

    n_in: int
    n_out: int
    truncated: bool = Field(description="n_in or n_out is over `limit`: columns/units cut")
    z: Rows = Field(description="pre-activations W a_prev + b, (rows, n_out)")
    a: Rows = Field(description="activations f(z), (rows, n_out)")
    delta: Rows = Field(
        description="dE/dz of the batch-mean loss (it carries the 1/batch_size), (rows, n_out)"
    )
    weights: Rows = Field(description="W, (n_out, n_in)")
    nabla_w: Rows = Field(
        description="dE/dW = Σ_rows delta a_prevᵀ (the batch mean), (n_out, n_in)"
    )
    penalty_w: Rows | None = Field(description="l2·W + l1·sign(W), null when l1 = l2 = 0")
    update_w: Rows = Field(description="ΔW = −learning_rate·(nabla_w + penalty_w), (n_out, n_in)")
    weights_after: Rows = Field(description="W + ΔW: the plain SGD step")
    biases: Vector | None
    nabla_b: Vector | None = Field(description="dE/db = Σ_rows delta")
    update_b: Vector | None = Field(description="Δb = −learning_rate·nabla_b")
    biases_after: Vector | None


class InspectSampleLayer(BaseModel):
    z: Vector
    a: Vector
    delta: Vector


class InspectSample(BaseModel):
    index: int = Field(description="row inside the batch")
    row: int = Field(description="row inside the training set")
    x: Vector
    y: Vector = Field(description="dense target (one-hot, or the 0/1 label)")
    layers: list[InspectSampleLayer]


class CheckedWeight(BaseModel):
    """One weight of the gradient check (API.md v1.1)."""

    layer: int = Field(description="1-based layer")
    row: int = Field(description="0-based row of that layer's W")
    col: int = Field(description="0-based column of that layer's W")
    backprop: float | None = Field(description="the chain rule's ∂E/∂W, in float64")
    numerical: float | None = Field(
        description="(E(w+h) − E(w−h))/2h of the batch-mean loss (no l1/l2), float64, "
        "h = 1e-6·max(1, |w|)"
    )
    relative_error: float | None = Field(description="|g − n| / max(|g|, |n|, 1e-12)")


class Inspection(BaseModel):
    """One SGD step's numbers (see the route's description)."""

    epoch: int = Field(description="the epoch of the weights used")
    batch: int
    n_batches: int
    batch_start: int = Field(description="first training row of the batch")
    batch_size: int = Field(description="rows in this batch (the last one may be smaller)")
    rows_truncated: bool = Field(description="the batch has more than `limit` rows")
    limit: int
    truncated: bool = Field(description="anything at all was cut")
    loss: float | None = Field(description="batch-mean loss, without l1/l2 terms")
    learning_rate: float
    l1: float
    l2: float
    update: Literal["sgd"] = Field(description="weights_after is always the plain SGD step")
    optimizer: str = Field(description="the optimizer the run actually trains with")
    layer_sizes: list[int]
    activation: str
    output_activation: str
    loss_name: str
    dtype: str
    inputs: Rows
    targets: Rows
    layers: list[InspectLayer]
    error_propagation: str = Field(
        description="the run's method; with weights_only its update differs from these gradients"
    )
    gradient_check: list[CheckedWeight] = Field(
        description="per layer, up to 8 weights with the largest |∂E/∂W| first"
    )
    sample: InspectSample


class ApplyStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch: int = Field(0, ge=0, description="batch index, 0-based (as in GET …/inspect)")


@router.get(
    "/{run_id}/inspect",
    response_model=Inspection,
    responses={code: ERROR_RESPONSES[code] for code in (404, 422)},
    summary="The numbers of one backprop step on one training batch (no update)",
    description=(
        "Forward pass, deltas and gradients of batch `batch` of the training set in its "
        "stored (unshuffled) order — `batch_size` rows, or all of them for full batch — "
        "with the run's current weights (one consistent snapshot, also while training). "
        "`weights_after` is the plain SGD step W − lr·∇W whatever optimizer the run uses "
        "(`optimizer` says which). `sample` repeats one row's vectors. Arrays are cut to "
        "64 rows and 64 units, with `truncated` flags. 422 names `batch` or `sample` when "
        "out of range."
    ),
)
async def inspect_step(
    run_id: str,
    manager: Manager,
    batch: Annotated[int, Query(ge=0, description="batch index, 0-based")] = 0,
    sample: Annotated[int, Query(ge=0, description="row inside the batch, 0-based")] = 0,
) -> Response:
    result: dict[str, Any] = await manager.inspect(run_id, batch, sample)
    return StrictJSONResponse(result)


@router.post(
    "/{run_id}/inspect/apply",
    response_model=Weights,
    responses={code: ERROR_RESPONSES[code] for code in (404, 409, 422)},
    summary="Take the inspector's plain-SGD step on one batch (an extra route)",
    description=(
        "Replaces the weights with `weights_after` of `GET …/inspect?batch=B` computed in "
        "full (no 64-unit cut): W − lr·(∇W + l2·W + l1·sign(W)), b − lr·∇b on the whole "
        "batch, in the run's dtype, whatever optimizer the run uses. Same rules as "
        "`PUT /weights`: 409 while running; epoch, metrics and optimizer state stay. "
        "Returns the new `/weights` body. 422 names `batch` when out of range."
    ),
)
async def apply_inspected_step(run_id: str, manager: Manager, body: ApplyStep) -> Response:
    result: dict[str, Any] = await apply_step(manager, run_id, body.batch)
    return StrictJSONResponse(result)

"""A run's record in the server's memory, and how a create request becomes one.

`Run` is what RunManager keeps per run (public config, status, last metrics, the
latest weights snapshot, its worker and hub); `prepare_run` checks a request against
every limit that needs the dataset and resolves its defaults; the rest converts
between a `Run`, the store's row and the network it defines."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from app.nn.datasets import Dataset, DatasetError, dataset_defaults, make_dataset
from app.nn.metrics import EpochMetrics, finite_or_none
from app.nn.network import MLP, count_params, error_propagation_problem, param_views
from app.nn.training import resolve_head
from app.runs.broadcast import RunHub
from app.runs.models import (
    MAX_FEATURES,
    MAX_PARAMS,
    MAX_SAMPLES,
    ProblemError,
    RunCreate,
    RunStatus,
    filled_schedule,
)
from app.runs.processes import Worker
from app.runs.run_config import RunConfig
from app.storage.store import INITIAL_META, Checkpoint, Snapshot

METRIC_KEYS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Run:
    """One run as the server holds it; RunManager changes it on the event loop only."""

    id: str
    config: RunConfig  # public config (API.md `config`), typed
    status: RunStatus
    message: str | None
    epoch: int
    last: dict[str, float | None]  # metrics of `epoch`
    created_at: datetime
    updated_at: datetime
    layer_sizes: list[int]
    task: str
    n_params: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Latest weights (flat, never mutated: a snapshot); None until loaded and after the
    # weights cache drops them (RunRegistry.params loads them again).
    params: np.ndarray | None = None
    params_epoch: int = 0
    params_generation: int = 0  # bumps with every new snapshot (a load in flight checks it)
    state: Checkpoint | None = None  # latest full trainer state known in memory
    worker: Worker | None = None
    hub: RunHub | None = None
    pending: list[EpochMetrics] = field(default_factory=list)  # metrics not yet stored
    # Metrics of a write that failed (disk full): the writer thread alone touches this,
    # and puts them in front of its next write for the run, so no gap is ever stored.
    write_backlog: list[EpochMetrics] = field(default_factory=list)
    deleted: bool = False
    has_initial: bool = False  # starts from weights of its own (`initial_weights`), not its seed's
    # Weight snapshots from the worker not yet stored (they go with the next checkpoint).
    pending_snapshots: list[Snapshot] = field(default_factory=list)
    # sweeps (app.runs.sweeps): the sweep this run belongs to, and its queue ticket
    sweep_id: str | None = None
    queued_at: int | None = None


def stored_config(run: Run, config: RunConfig | None = None) -> dict[str, Any]:
    """The public config (the run's, or `config`) plus what a restart needs without
    rebuilding the dataset."""
    public = (config or run.config).public()
    stored = {**public, "_layer_sizes": run.layer_sizes, "_task": run.task}
    if run.has_initial:
        stored["_initial"] = True
    return stored


def stored_row(run: Run) -> dict[str, Any]:
    """A new run's row as `Store.insert_run` takes it."""
    return {
        "id": run.id,
        "name": run.config.name,
        "config": stored_config(run),
        "status": str(run.status),
        "message": None,
        "epoch": 0,
        "last_metrics": None,
        "created_at": run.created_at.isoformat(),
        "updated_at": run.updated_at.isoformat(),
    }


def initial_checkpoint(run: Run) -> Checkpoint | None:
    """What the store keeps of a run created with `initial_weights` (None without)."""
    if not run.has_initial or run.params is None:
        return None
    return Checkpoint(0, {"params": run.params}, dict(INITIAL_META))


def no_metrics() -> dict[str, float | None]:
    """`last` of a run without an epoch yet."""
    return dict.fromkeys(METRIC_KEYS)


def last_metrics_of(row: EpochMetrics) -> dict[str, float | None]:
    """`last` from an epoch's metrics (non-finite values become None)."""
    return {k: finite_or_none(getattr(row, k)) for k in METRIC_KEYS}


def run_from_row(row: dict[str, Any]) -> Run:
    """A run as the store holds it (see stored_config); a run stored by an older version
    shows the fields added since with their defaults."""
    stored = dict(row["config"])
    layer_sizes = list(stored.pop("_layer_sizes"))
    task = stored.pop("_task")
    has_initial = bool(stored.pop("_initial", False))
    config = RunConfig.of(stored, strict=False)
    return Run(
        id=row["id"],
        config=config,
        status=RunStatus(row["status"]),
        message=row["message"],
        epoch=int(row["epoch"]),
        last=row["last_metrics"] or no_metrics(),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        layer_sizes=layer_sizes,
        task=task,
        n_params=count_params(layer_sizes, config.use_bias),
        has_initial=has_initial,
    )


def build_dataset(spec: dict[str, Any]) -> Dataset:
    """The dataset of an API dataset spec; a bad one is a 422 naming its field."""
    try:
        return make_dataset(spec)
    except DatasetError as exc:
        raise ProblemError(422, f"dataset.{exc}", f"dataset.{exc.field}") from None


def prepare_run(
    body: RunCreate, data: Dataset | None = None, run_id: str | None = None
) -> tuple[Run, dict[str, np.ndarray] | None]:
    """Resolve defaults and check every limit that needs the dataset (`data`, when the
    caller built it already from `body.dataset`). Builds the dataset, so RunManager calls
    it in a thread, off the event loop."""
    spec = body.dataset.model_dump()
    if data is None:
        data = build_dataset(spec)
    public_dataset = {k: v for k, v in dataset_defaults(spec).items() if k not in ("x", "y")}
    n_samples = data.x_train.shape[0] + data.x_test.shape[0]
    if n_samples > MAX_SAMPLES:
        raise ProblemError(422, f"at most {MAX_SAMPLES} samples", "dataset.n_samples")
    if data.n_inputs > MAX_FEATURES or data.n_outputs > MAX_FEATURES:
        raise ProblemError(
            422,
            f"at most {MAX_FEATURES} inputs and outputs",
            "dataset",
        )
    try:
        output_activation, loss = resolve_head(
            data.task, data.n_outputs, body.output_activation, body.loss
        )
    except ValueError as exc:
        blamed = getattr(exc, "field", "loss")
        raise ProblemError(
            422, str(exc), blamed if blamed in ("loss", "output_activation") else "loss"
        ) from None
    if body.features is not None and data.n_inputs != 2:
        raise ProblemError(
            422,
            f"features need a dataset with 2 inputs; this one has {data.n_inputs}",
            "features",
        )
    problem = error_propagation_problem(body.error_propagation, loss, output_activation)
    if problem:
        raise ProblemError(422, f"error_propagation: {problem}", "error_propagation")
    n_inputs = len(body.features) if body.features is not None else data.n_inputs
    layer_sizes = [n_inputs, *body.hidden_layers, data.n_outputs]
    n_params = count_params(layer_sizes, body.use_bias)
    if n_params > MAX_PARAMS:
        raise ProblemError(
            422,
            f"the network {layer_sizes} would have {n_params:,} parameters; "
            f"the limit is {MAX_PARAMS:,}",
            "hidden_layers",
        )
    run_id = run_id or uuid.uuid4().hex[:12]
    hidden = "-".join(str(h) for h in body.hidden_layers) or "linear"
    fields: dict[str, Any] = body.model_dump(exclude={"start", "dataset", "initial_weights"})
    fields.update(
        name=body.name if body.name is not None else f"{spec['kind']} {hidden} {run_id[:4]}",
        dataset=public_dataset,
        output_activation=output_activation,
        loss=loss,
        lr_schedule=filled_schedule(fields["lr_schedule"], body.epochs),
    )
    custom = None
    if spec["kind"] == "custom":
        y_dtype = np.int64 if data.task == "classification" else np.float64
        custom = {
            "x": np.asarray(spec["x"], dtype=np.float64),
            "y": np.asarray(spec["y"], dtype=y_dtype),
        }
    now = utcnow()
    run = Run(
        id=run_id,
        config=RunConfig.of(fields),
        status=RunStatus.created,
        message=None,
        epoch=0,
        last=no_metrics(),
        created_at=now,
        updated_at=now,
        layer_sizes=layer_sizes,
        task=data.task,
        n_params=n_params,
    )
    if body.initial_weights is not None:  # 422 naming the layer when they do not fit
        layers = [layer.model_dump() for layer in body.initial_weights.layers]
        flat = flat_params(layers, layer_sizes, body.use_bias, "initial_weights.layers")
        run.params, run.has_initial = flat.astype(body.dtype), True
    else:
        # The creation weights, as the worker's Trainer draws them (same seed, same call).
        run.params = initial_params(run)
    return run, custom


def network_of(run: Run) -> MLP:
    """The run's network, all zeros (for loading weights into)."""
    c = run.config
    return MLP(
        run.layer_sizes,
        activation=c.activation,
        output_activation=c.output_activation,
        use_bias=c.use_bias,
        dtype=c.dtype,
    )


def initial_params(run: Run) -> np.ndarray:
    """The creation weights, as the worker's Trainer draws them (same seed, same call)."""
    c = run.config
    net = MLP.initialise(
        run.layer_sizes,
        activation=c.activation,
        output_activation=c.output_activation,
        use_bias=c.use_bias,
        init=c.init,
        rng=np.random.default_rng(int(c.seed)),
        dtype=c.dtype,
    )
    return net.params


def flat_params(
    layers: Any, layer_sizes: list[int], use_bias: bool, field: str = "layers"
) -> np.ndarray:
    """`layers` in the API's form ([{"weights": (n_out, n_in), "biases": (n_out,) | None}])
    as one flat float64 vector in MLP.params' layout; 422 (field `layers…`) on a wrong
    shape, biases that do not match `use_bias`, or a non-finite value."""
    n_layers = len(layer_sizes) - 1
    if not isinstance(layers, list) or len(layers) != n_layers:
        raise ProblemError(422, f"{field} must be a list of {n_layers} layers", field)
    flat = np.empty(count_params(layer_sizes, use_bias), dtype=np.float64)
    weights, biases = param_views(flat, layer_sizes, use_bias)
    for i, layer in enumerate(layers):
        where = f"{field}.{i}"
        if not isinstance(layer, dict) or set(layer) != {"weights", "biases"}:
            raise ProblemError(422, f"{where} must have exactly `weights` and `biases`", where)
        shape = (layer_sizes[i + 1], layer_sizes[i])
        weights[i][...] = _checked_array(layer["weights"], shape, f"{where}.weights")
        if biases is None:
            if layer["biases"] is not None:
                raise ProblemError(422, "this run has no biases: send null", f"{where}.biases")
        else:
            biases[i][...] = _checked_array(layer["biases"], shape[:1], f"{where}.biases")
    return flat


def _checked_array(value: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ProblemError(422, f"{where} must hold numbers only", where) from None
    if array.shape != shape:
        raise ProblemError(
            422, f"{where} must have shape {list(shape)}, got {list(array.shape)}", where
        )
    if not np.isfinite(array).all():
        raise ProblemError(422, f"{where}: every value must be a finite number", where)
    return array

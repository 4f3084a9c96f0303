"""A run's data in and out (API.md v1.1 "Editing weights, importing and exporting").

`export_npz` writes a run's weights, layer sizes, epoch and config as an `.npz`
(`np.savez`, no pickles); a `custom` dataset's points go in too, as arrays `x`
and `y` in the form `custom` takes them, so that the file alone re-makes the run.
`parse_export` reads such a file back into the `RunCreate` that makes a new
`created` run from it, refusing anything else with a 422 naming what is wrong.
`metrics_csv` and `data_csv` write the two CSV downloads. Pure functions over
arrays and dicts: the API calls them off the event loop.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from app.runs.errors import ProblemError
from app.runs.messages import problem_from_validation
from app.runs.models import RunCreate

METRICS_COLUMNS = (
    "epoch",
    "train_loss",
    "test_loss",
    "train_accuracy",
    "test_accuracy",
    "learning_rate",
)
# An import never unpacks more than this (a compressed .npz could expand without bound).
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
MAX_LAYERS = 11  # 10 hidden layers + the output layer
IMPORTED_SUFFIX = " (imported)"


@dataclass(frozen=True)
class ExportSource:
    """What an export holds: the run's public config, its network and latest weights
    (arrays in the run's dtype, never changed in place) and a custom dataset's points."""

    config: dict[str, Any]
    layer_sizes: list[int]
    weights: list[np.ndarray]
    biases: list[np.ndarray] | None
    epoch: int
    custom: dict[str, np.ndarray] | None


def export_npz(source: ExportSource) -> bytes:
    """The `.npz` bytes: W1, b1, W2, b2, … (no bN without biases), layer_sizes, epoch,
    config (0-d unicode, JSON) and, for a custom dataset, x and y."""
    arrays: dict[str, np.ndarray] = {}
    for i, w in enumerate(source.weights, start=1):
        arrays[f"W{i}"] = np.ascontiguousarray(w)
        if source.biases is not None:
            arrays[f"b{i}"] = np.ascontiguousarray(source.biases[i - 1])
    arrays["layer_sizes"] = np.asarray(source.layer_sizes, dtype=np.int64)
    arrays["epoch"] = np.asarray(source.epoch, dtype=np.int64)
    arrays["config"] = np.asarray(json.dumps(source.config, ensure_ascii=False))
    if source.custom is not None:
        arrays["x"] = source.custom["x"]
        arrays["y"] = source.custom["y"]
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


# ---- CSV ----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    """A number as CSV text that reads back exactly; null and non-finite are empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    number = float(value)
    return repr(number) if math.isfinite(number) else ""


def _lines(rows: Iterable[Iterable[Any]]) -> Iterable[str]:
    for row in rows:
        yield ",".join(_cell(v) for v in row) + "\r\n"


def metrics_csv(metrics: Mapping[str, list[Any]]) -> str:
    """`/metrics` (columnar) as CSV: one row per epoch, empty cells for null."""
    header = ",".join(METRICS_COLUMNS) + "\r\n"
    columns = [metrics.get(name) or [None] * len(metrics["epoch"]) for name in METRICS_COLUMNS]
    return header + "".join(_lines(zip(*columns, strict=True)))


def data_csv(data: Mapping[str, Mapping[str, list[Any]]], task: str) -> str:
    """`/data` as CSV: `split,x1,…,xN,y1,…,yK` (classification: one `y`, the label),
    the train rows first, each split in `/data`'s order."""
    n_in = _width(data, "x")
    n_out = 1 if task == "classification" else _width(data, "y")
    names = ["split", *(f"x{i}" for i in range(1, n_in + 1))]
    names += ["y"] if task == "classification" else [f"y{i}" for i in range(1, n_out + 1)]
    parts = [",".join(names) + "\r\n"]
    for split in ("train", "test"):
        xs, ys = data[split]["x"], data[split]["y"]
        if task == "classification":
            rows = ([split, *x, y] for x, y in zip(xs, ys, strict=True))
        else:
            rows = ([split, *x, *y] for x, y in zip(xs, ys, strict=True))
        parts.extend(_lines(rows))
    return "".join(parts)


def _width(data: Mapping[str, Mapping[str, list[Any]]], key: str) -> int:
    for split in ("train", "test"):
        rows = data[split][key]
        if rows:
            return len(rows[0])
    return 0


# ---- import -------------------------------------------------------------------------------


def _refuse(detail: str, field: str) -> ProblemError:
    return ProblemError(422, detail, field)


def _open(body: bytes) -> Mapping[str, np.ndarray]:
    """Every array of an `.npz` body, loaded without pickles; 422 for anything else."""
    if not body:
        raise _refuse("the body is empty: send an .npz file from export.npz", "body")
    if body[:1] == b"\x80":  # pickle protocol 2+
        raise _refuse("the body is a Python pickle, which is never loaded: send an .npz", "body")
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
        unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise _refuse("the body is not an .npz file (a zip of .npy arrays)", "body") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise _refuse(
            f"the file unpacks to {unpacked:,} bytes; at most {MAX_UNPACKED_BYTES:,}", "body"
        )
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(io.BytesIO(body), allow_pickle=False) as npz:
            for name in npz.files:
                try:
                    arrays[name] = npz[name]
                except ValueError as exc:
                    if "pickle" in str(exc).lower() or "object" in str(exc).lower():
                        raise _refuse(
                            f"array {name!r} holds Python objects (a pickle); "
                            "only plain numeric and text arrays are read",
                            name,
                        ) from None
                    raise _refuse(f"array {name!r} cannot be read: {exc}", name) from None
    except ProblemError:
        raise
    except (ValueError, OSError, EOFError, KeyError, TypeError, zipfile.BadZipFile):
        # a broken member: a bad .npy header, a truncated or corrupt entry
        raise _refuse("the body is not a readable .npz file", "body") from None
    return arrays


def _config(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    if "config" not in arrays:
        raise _refuse("the file has no array 'config' (the run's config as JSON)", "config")
    raw = arrays["config"]
    if raw.shape != () or raw.dtype.kind != "U":
        raise _refuse("'config' must be a 0-d text array holding JSON", "config")
    try:
        config = json.loads(str(raw[()]))
    except ValueError:
        raise _refuse("'config' does not hold valid JSON", "config") from None
    if not isinstance(config, dict):
        raise _refuse("'config' must hold a JSON object", "config")
    return config


def _layer_sizes(arrays: Mapping[str, np.ndarray]) -> list[int]:
    if "layer_sizes" not in arrays:
        raise _refuse("the file has no array 'layer_sizes'", "layer_sizes")
    sizes = arrays["layer_sizes"]
    if sizes.dtype.kind not in "iu" or sizes.ndim != 1 or not 2 <= sizes.size <= MAX_LAYERS + 1:
        raise _refuse(
            f"'layer_sizes' must be 2-{MAX_LAYERS + 1} integers [n_in, …, n_out]", "layer_sizes"
        )
    if (sizes < 1).any():
        raise _refuse("'layer_sizes' must be positive", "layer_sizes")
    return [int(s) for s in sizes]


def _matrix(arrays: Mapping[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name not in arrays:
        raise _refuse(f"the file has no array {name!r}", name)
    array = arrays[name]
    if array.dtype.kind not in "fiu":
        raise _refuse(f"{name!r} must hold real numbers, not {array.dtype}", name)
    if array.shape != shape:
        raise _refuse(
            f"{name!r} must have shape {list(shape)} (from layer_sizes), got {list(array.shape)}",
            name,
        )
    if not np.isfinite(array).all():
        raise _refuse(f"{name!r}: every value must be a finite number", name)
    return array


def _layers(
    arrays: Mapping[str, np.ndarray], sizes: list[int], use_bias: bool
) -> list[dict[str, Any]]:
    layers = []
    for i in range(1, len(sizes)):
        shape = (sizes[i], sizes[i - 1])
        weights = _matrix(arrays, f"W{i}", shape)
        biases = None
        if use_bias:
            biases = _matrix(arrays, f"b{i}", shape[:1]).astype(np.float64).tolist()
        elif f"b{i}" in arrays:
            raise _refuse(f"the config has use_bias false, but the file has 'b{i}'", f"b{i}")
        layers.append({"weights": weights.astype(np.float64).tolist(), "biases": biases})
    return layers


def _custom_points(arrays: Mapping[str, np.ndarray]) -> dict[str, list[Any]]:
    if "x" not in arrays or "y" not in arrays:
        raise _refuse("a custom dataset's points are not in this file (arrays 'x' and 'y')", "x")
    out = {}
    for name in ("x", "y"):
        if arrays[name].dtype.kind not in "fiu":
            raise _refuse(f"{name!r} must hold numbers, not {arrays[name].dtype}", name)
        out[name] = arrays[name].tolist()
    return out


def parse_export(body: bytes) -> RunCreate:
    """The `POST /api/runs` body that re-makes an exported run as a new `created` run:
    the file's config (named "<name> (imported)") with its weights as `initial_weights`.
    ProblemError(422) names the array or config field at fault. Call it off the loop."""
    arrays = _open(body)
    config = _config(arrays)
    sizes = _layer_sizes(arrays)
    hidden = config.get("hidden_layers")
    if isinstance(hidden, list) and hidden != sizes[1:-1]:
        raise _refuse(
            f"'layer_sizes' {sizes} does not match the config's hidden_layers {hidden}",
            "layer_sizes",
        )
    layers = _layers(arrays, sizes, config.get("use_bias", True) is not False)
    fields = {k: v for k, v in config.items() if k != "name"}
    if isinstance(config.get("name"), str):
        fields["name"] = config["name"][: 80 - len(IMPORTED_SUFFIX)] + IMPORTED_SUFFIX
    dataset = fields.get("dataset")
    if isinstance(dataset, dict) and dataset.get("kind") == "custom":
        fields["dataset"] = {**dataset, **_custom_points(arrays)}
    fields.update(initial_weights={"layers": layers}, start=False)
    try:
        return RunCreate.model_validate(fields)
    except ValidationError as exc:
        problem = problem_from_validation(exc)
    field = problem.field or ""
    if field.startswith("initial_weights"):  # values our own arrays failed, e.g. too wide
        raise _refuse(problem.detail, "W1")
    raise _refuse(f"config: {problem.detail}", f"config.{field}" if field else "config")


_LAYER_FIELD = re.compile(r"initial_weights\.layers\.(\d+)\.(weights|biases)")


def imported_problem(exc: ProblemError) -> ProblemError:
    """A creation error of an imported run, with `initial_weights.layers.i.weights`
    named as the file's array (`W<i+1>`, `b<i+1>`) and config fields as `config.<f>`."""
    field = exc.field or ""

    def array_name(match: re.Match[str]) -> str:
        return ("W" if match[2] == "weights" else "b") + str(int(match[1]) + 1)

    if _LAYER_FIELD.match(field):
        name = _LAYER_FIELD.sub(array_name, field)
        detail = _LAYER_FIELD.sub(array_name, exc.detail)
        return ProblemError(exc.status_code, f"{detail} (the network the config defines)", name)
    if exc.status_code == 422 and field and not field.startswith("config"):
        return ProblemError(422, f"config: {exc.detail}", f"config.{field}")
    return exc

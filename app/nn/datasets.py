"""Seeded datasets (API.md "Dataset"): 2-D toy problems, regression, the teacher, custom data.

Every generator is a pure function of the spec. Random streams, all from the
dataset's ``seed``: the samples and their noise come from
``SeedSequence(seed, spawn_key=(1,))``, the train/test permutation from
``spawn_key=(2,)``, and the teacher's weights from ``spawn_key=(3,)``. The
teacher deliberately does not use ``default_rng(seed)``: that is the stream a
run initialises its own weights from, so a student with the teacher's shape
and the same seed would start as the teacher and have nothing to learn.

Classification kinds draw classes in equal shares (counts differ by at most 1)
before noise; the 2-D inputs lie in [-1, 1]² before noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.nn.activations import ACTIVATIONS
from app.nn.network import MLP, count_params

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

CLASSIFICATION_2D = ("circle", "xor", "gauss", "spiral", "moons")
REGRESSION = ("plane", "sine")
DATASET_KINDS: tuple[str, ...] = (*CLASSIFICATION_2D, *REGRESSION, "teacher", "custom")
TASKS = ("classification", "regression")

MAX_SAMPLES = 100_000
MAX_WIDTH = 4096
MAX_TEACHER_PARAMS = 5_000_000
SPIRAL_TURNS = 1.25


class DatasetError(ValueError):
    """A bad dataset spec; ``field`` is the offending field ("x", "y", "n_classes", ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Dataset:
    """x_*: (n, n_inputs) float64; y_*: int64 labels (n,) or (n, n_outputs) float64 targets.

    n_outputs is the network's output width: 1 for binary classification,
    n_classes for k > 2 classes; n_classes is 0 for regression.
    """

    kind: str
    task: str
    x_train: F64
    y_train: NDArray[Any]
    x_test: F64
    y_test: NDArray[Any]
    n_inputs: int
    n_outputs: int
    n_classes: int

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])


# --- parameters ---------------------------------------------------------------------------

_COMMON: dict[str, dict[str, Any]] = {
    "n_samples": {"type": "integer", "default": 400, "min": 10, "max": MAX_SAMPLES},
    "noise": {"type": "number", "default": 0.1, "min": 0.0, "max": 1.0},
    "test_fraction": {"type": "number", "default": 0.2, "min": 0.0, "max": 0.9},
    "seed": {"type": "integer", "default": 0, "min": 0, "max": None},
}
_N_CLASSES: dict[str, dict[str, Any]] = {
    "n_classes": {"type": "integer", "default": 2, "min": 2, "max": 8}
}
_TEACHER: dict[str, dict[str, Any]] = {
    "teacher_layers": {
        "type": "list[integer]",
        "default": [3, 5, 2],
        "min_items": 2,
        "max_items": 10,
        "min": 1,
        "max": 1024,
    },
    "teacher_activation": {
        "type": "enum",
        "default": "sigmoid",
        "choices": list(ACTIVATIONS),
    },
    # multiplies the teacher's xavier weights: a larger scale spreads its outputs
    "teacher_weight_scale": {"type": "number", "default": 1.0, "min": 0.1, "max": 10.0},
}
_CUSTOM: dict[str, dict[str, Any]] = {
    "task": {"type": "enum", "default": None, "choices": list(TASKS), "required": True},
    "x": {"type": "list[list[number]]", "default": None, "required": True},
    "y": {
        "type": "list[integer] | list[list[number]] | list[number]",
        "default": None,
        "required": True,
    },
    "test_fraction": _COMMON["test_fraction"],
    "seed": _COMMON["seed"],
}


def _parameters(kind: str) -> dict[str, dict[str, Any]]:
    if kind == "custom":
        return _CUSTOM
    params = dict(_COMMON)
    if kind in ("gauss", "spiral"):
        params.update(_N_CLASSES)
    if kind == "teacher":
        params.update(_TEACHER)
    return params


def dataset_catalog() -> list[dict[str, Any]]:
    """Items of GET /api/datasets: {"kind", "task", "n_inputs", "n_outputs", "parameters"}.

    ``n_outputs`` is the network's output width with the default parameters
    (1 for two classes); it is null where it depends on the parameters
    (gauss/spiral with n_classes > 2 have n_classes outputs; teacher: its
    layer sizes; custom: the data), as is ``n_inputs`` for teacher and custom.
    """
    items: list[dict[str, Any]] = []
    for kind in DATASET_KINDS:
        if kind in CLASSIFICATION_2D:
            task, n_in, n_out = "classification", 2, (None if kind in ("gauss", "spiral") else 1)
        elif kind == "plane":
            task, n_in, n_out = "regression", 2, 1
        elif kind == "sine":
            task, n_in, n_out = "regression", 1, 1
        elif kind == "teacher":
            task, n_in, n_out = "regression", None, None
        else:
            task, n_in, n_out = None, None, None
        params = {name: dict(p) for name, p in _parameters(kind).items()}
        items.append(
            {"kind": kind, "task": task, "n_inputs": n_in, "n_outputs": n_out, "parameters": params}
        )
    return items


def _is_number(v: object) -> bool:
    return _as_float(v) is not None


def _as_float(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
        return None
    return float(v)


def _check_int(name: str, v: object, lo: int, hi: int | None) -> int:
    fv = _as_float(v)
    if fv is None or not math.isfinite(fv) or fv != math.floor(fv):
        raise DatasetError(name, f"must be an integer, got {v!r}")
    iv = int(v) if isinstance(v, int | np.integer) else int(fv)
    if iv < lo or (hi is not None and iv > hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise DatasetError(name, f"must be {bounds}, got {iv}")
    return iv


def _check_number(name: str, v: object, lo: float, hi: float) -> float:
    fv = _as_float(v)
    if fv is None or not math.isfinite(fv):
        raise DatasetError(name, f"must be a finite number, got {v!r}")
    if not lo <= fv <= hi:
        raise DatasetError(name, f"must be between {lo} and {hi}, got {fv}")
    return fv


def dataset_defaults(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec checked and with every default filled (API.md ``config.dataset``).

    Raises DatasetError for an unknown kind, a field that does not belong to
    the kind, or a value out of range. For ``custom`` the ``x``/``y`` given are
    passed through unchecked here (``make_dataset`` checks them); the API is
    expected to leave them out of ``config``.
    """
    kind = spec.get("kind")
    if kind not in DATASET_KINDS:
        raise DatasetError("kind", f"must be one of {list(DATASET_KINDS)}, got {kind!r}")
    params = _parameters(kind)
    for name in spec:
        if name != "kind" and name not in params:
            raise DatasetError(name, f"is not a parameter of the {kind!r} dataset")
    out: dict[str, Any] = {"kind": kind}
    for name, p in params.items():
        value = spec.get(name, p["default"])
        if value is None and p.get("required"):
            raise DatasetError(name, f"is required for the {kind!r} dataset")
        if p["type"] == "integer":
            value = _check_int(name, value, p["min"], p["max"])
        elif p["type"] == "number":
            value = _check_number(name, value, p["min"], p["max"])
        elif p["type"] == "enum" and value not in p["choices"]:
            raise DatasetError(name, f"must be one of {p['choices']}, got {value!r}")
        elif name == "teacher_layers":
            value = _check_teacher_layers(value)
        out[name] = value
    return out


def _check_teacher_layers(value: object) -> list[int]:
    if not isinstance(value, list | tuple) or not 2 <= len(value) <= 10:
        raise DatasetError("teacher_layers", "must be a list of 2-10 layer sizes")
    layers = [_check_int("teacher_layers", v, 1, 1024) for v in value]
    if count_params(layers, True) > MAX_TEACHER_PARAMS:
        raise DatasetError(
            "teacher_layers", f"the teacher may have at most {MAX_TEACHER_PARAMS} parameters"
        )
    return layers


# --- generators: (n, noise, rng[, extra]) -> (x (n, d), y) -------------------------------


def _balanced_labels(n: int, k: int, rng: np.random.Generator) -> I64:
    return rng.permutation(np.arange(n, dtype=np.int64) % k)


def _circle(n: int, rng: np.random.Generator) -> tuple[F64, I64]:
    # Inner disk r < 0.5 is class 1, outer ring 0.7 < r < 1 is class 0 (TF Playground's layout).
    labels = _balanced_labels(n, 2, rng)
    r = np.where(labels == 1, rng.uniform(0.0, 0.5, n), rng.uniform(0.7, 1.0, n))
    angle = rng.uniform(0.0, 2 * np.pi, n)
    return np.column_stack([r * np.cos(angle), r * np.sin(angle)]), labels


def _xor(n: int, rng: np.random.Generator) -> tuple[F64, I64]:
    # Class 1 where x·y > 0; points stay 0.05 away from the axes so noise 0 is separable.
    labels = _balanced_labels(n, 2, rng)
    sx = rng.choice([-1.0, 1.0], n)
    sy = np.where(labels == 1, sx, -sx)
    mag = rng.uniform(0.05, 1.0, (n, 2))
    return np.column_stack([sx * mag[:, 0], sy * mag[:, 1]]), labels


def _gauss(n: int, rng: np.random.Generator, k: int) -> tuple[F64, I64]:
    # k clusters on a circle of radius 0.6; each a 2-D Gaussian truncated to a disk of
    # radius rc, small enough that clusters never touch and stay inside [-1, 1]^2.
    labels = _balanced_labels(n, k, rng)
    centre_r = 0.6
    rc = min(0.35, 0.45 * 2 * centre_r * np.sin(np.pi / k))
    sigma = rc / 2
    angles = 2 * np.pi * np.arange(k) / k + np.pi / 4
    centres = centre_r * np.column_stack([np.cos(angles), np.sin(angles)])
    # inverse CDF of a Rayleigh(sigma) distribution truncated at rc
    u = rng.uniform(0.0, 1.0, n)
    r = sigma * np.sqrt(-2 * np.log1p(-u * (1 - np.exp(-(rc**2) / (2 * sigma**2)))))
    phi = rng.uniform(0.0, 2 * np.pi, n)
    x = centres[labels] + np.column_stack([r * np.cos(phi), r * np.sin(phi)])
    return x, labels


def _spiral(n: int, rng: np.random.Generator, k: int) -> tuple[F64, I64]:
    # k interleaved arms, radius from 0.05 to 1. TF Playground's arms make 1.75 turns, but
    # at the API's default noise (std 0.1 in these units, twice TF's maximum) such arms
    # overlap so much that no classifier beats ~82% (k-NN on 20,000 points); with 1.25
    # turns the best is ~92% and the default [8, 8] tanh net learns it in ~1,500 epochs.
    labels = _balanced_labels(n, k, rng)
    t = rng.uniform(0.0, 1.0, n)
    r = 0.05 + 0.95 * t
    theta = SPIRAL_TURNS * 2 * np.pi * t + 2 * np.pi * labels / k
    return np.column_stack([r * np.sin(theta), r * np.cos(theta)]), labels


def _moons(n: int, rng: np.random.Generator) -> tuple[F64, I64]:
    # scikit-learn's two moons, scaled by 1/1.5 and centred: x in [-1, 1], y in [-0.5, 0.5].
    labels = _balanced_labels(n, 2, rng)
    t = rng.uniform(0.0, np.pi, n)
    mx = np.where(labels == 0, np.cos(t), 1 - np.cos(t))
    my = np.where(labels == 0, np.sin(t), 0.5 - np.sin(t))
    return np.column_stack([(mx - 0.5) / 1.5, (my - 0.25) / 1.5]), labels


_CLASSIFIERS: dict[str, Callable[..., tuple[F64, I64]]] = {
    "circle": _circle,
    "xor": _xor,
    "gauss": _gauss,
    "spiral": _spiral,
    "moons": _moons,
}


def _plane(n: int, rng: np.random.Generator) -> tuple[F64, F64]:
    x = rng.uniform(-1.0, 1.0, (n, 2))
    return x, (0.5 * (x[:, 0] + x[:, 1]))[:, None]


def _sine(n: int, rng: np.random.Generator) -> tuple[F64, F64]:
    x = rng.uniform(-1.0, 1.0, (n, 1))
    return x, np.sin(np.pi * x)


def teacher_network(
    layers: Sequence[int], activation: str, seed: int, weight_scale: float = 1.0
) -> MLP:
    """The teacher: xavier weights from the seed's teacher stream times ``weight_scale``,
    zero biases, float64.

    Its last layer is built "linear" here; ``teacher_outputs`` applies
    ``activation`` to it too (the teacher uses that activation on every layer).
    """
    teacher = MLP.initialise(
        layers,
        activation=activation,
        output_activation="linear",
        use_bias=True,
        init="xavier",
        rng=_stream(seed, 3),
        dtype=np.float64,
    )
    if weight_scale != 1.0:  # scale 1 leaves the weights bit for bit as they were drawn
        for w in teacher.weights:
            w *= weight_scale
    return teacher


def teacher_outputs(teacher: MLP, x: F64) -> F64:
    """Teacher targets (n, n_out) for inputs x (n, n_in)."""
    out = ACTIVATIONS[teacher.activation].f(teacher.forward(x), None)
    return out.astype(np.float64, copy=False)


def _stream(seed: int, key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))


# --- custom data --------------------------------------------------------------------------


def _custom_arrays(task: str, x: object, y: object) -> tuple[F64, NDArray[Any], int]:
    """Checked (x (n, d), y, n_classes) from custom lists."""
    try:
        xa = np.array(x, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        raise DatasetError(
            "x", "must be a list of rows of numbers, all rows the same width"
        ) from None
    if xa.ndim != 2 or xa.shape[1] < 1:
        raise DatasetError("x", "must be a non-empty list of non-empty rows of numbers")
    n, width = xa.shape
    if n < 2:
        raise DatasetError("x", "needs at least 2 samples")
    if n > MAX_SAMPLES:
        raise DatasetError("x", f"at most {MAX_SAMPLES} samples, got {n}")
    if width > MAX_WIDTH:
        raise DatasetError("x", f"at most {MAX_WIDTH} inputs, got {width}")
    if not np.isfinite(xa).all():
        raise DatasetError("x", "every value must be finite")
    if isinstance(x, list | tuple) and any(
        isinstance(v, bool) for row in x if isinstance(row, list | tuple) for v in row
    ):
        raise DatasetError("x", "values must be numbers, not booleans")
    if not isinstance(y, list | tuple | np.ndarray):
        raise DatasetError("y", "must be a list")
    if len(y) != n:
        raise DatasetError("y", f"has {len(y)} entries but x has {n} rows")
    if task == "classification":
        if any(not _is_number(v) for v in y):
            raise DatasetError("y", "classification labels must be integers 0..k-1")
        ya = np.array(y, dtype=np.float64)
        if (
            ya.ndim != 1
            or not np.isfinite(ya).all()
            or (ya != np.round(ya)).any()
            or (ya < 0).any()
        ):
            raise DatasetError("y", "classification labels must be integers 0..k-1")
        k = int(ya.max()) + 1
        if k < 2:
            raise DatasetError("y", "classification needs labels of at least 2 classes (max >= 1)")
        if k > MAX_WIDTH:
            raise DatasetError("y", f"at most {MAX_WIDTH} classes, got {k}")
        return xa, ya.astype(np.int64), k
    try:
        ya = np.array(y, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        raise DatasetError("y", "must be a list of numbers or of rows of equal width") from None
    if ya.ndim == 1:
        ya = ya[:, None]
    if ya.ndim != 2 or ya.shape[1] < 1:
        raise DatasetError("y", "must be a list of numbers or of non-empty rows of equal width")
    if ya.shape[1] > MAX_WIDTH:
        raise DatasetError("y", f"at most {MAX_WIDTH} outputs, got {ya.shape[1]}")
    if not np.isfinite(ya).all():
        raise DatasetError("y", "every value must be finite")
    return xa, ya, 0


# --- assembly -----------------------------------------------------------------------------


def make_dataset(spec: Mapping[str, Any]) -> Dataset:
    """Build the dataset a (possibly partial) API dataset spec describes; DatasetError if bad."""
    full = dataset_defaults(spec)
    kind: str = full["kind"]
    seed: int = full["seed"]
    rng = _stream(seed, 1)
    x: F64
    y: NDArray[Any]
    if kind == "custom":
        task = full["task"]
        x, y, n_classes = _custom_arrays(task, full["x"], full["y"])
    elif kind in _CLASSIFIERS:
        task = "classification"
        n = full["n_samples"]
        extra = (full["n_classes"],) if kind in ("gauss", "spiral") else ()
        x, y = _CLASSIFIERS[kind](n, rng, *extra)
        n_classes = extra[0] if extra else 2
        if full["noise"] > 0:
            x = x + rng.normal(0.0, full["noise"], x.shape)
    else:
        task, n_classes = "regression", 0
        n = full["n_samples"]
        if kind == "plane":
            x, y = _plane(n, rng)
        elif kind == "sine":
            x, y = _sine(n, rng)
        else:
            layers = full["teacher_layers"]
            teacher = teacher_network(
                layers, full["teacher_activation"], seed, full["teacher_weight_scale"]
            )
            x = rng.uniform(-1.0, 1.0, (n, layers[0]))
            y = teacher_outputs(teacher, x)
        if full["noise"] > 0:
            y = y + rng.normal(0.0, full["noise"], y.shape)
    n = x.shape[0]
    n_test = round(full["test_fraction"] * n)
    if n_test >= n:
        raise DatasetError("test_fraction", f"leaves no training samples out of {n}")
    perm = _stream(seed, 2).permutation(n)
    train, test = perm[: n - n_test], perm[n - n_test :]
    if task == "classification":
        n_outputs = 1 if n_classes == 2 else n_classes
    else:
        n_outputs = int(y.shape[1])
    return Dataset(
        kind=kind,
        task=task,
        x_train=np.ascontiguousarray(x[train]),
        y_train=np.ascontiguousarray(y[train]),
        x_test=np.ascontiguousarray(x[test]),
        y_test=np.ascontiguousarray(y[test]),
        n_inputs=int(x.shape[1]),
        n_outputs=n_outputs,
        n_classes=n_classes,
    )


def labels_to_json(task: str, y: NDArray[Any]) -> list[Any]:
    """y as ``custom`` takes it: int labels (classification) or target rows (regression)."""
    if task == "classification":
        return [int(v) for v in y.tolist()]
    if len(y) == 0:  # an empty test set: numpy cannot infer the width of zero rows
        return []
    rows: list[Any] = np.asarray(y, dtype=np.float64).reshape(len(y), -1).tolist()
    return rows


def dataset_to_json(data: Dataset) -> dict[str, Any]:
    """GET /data body: {"train": {"x": rows, "y": ...}, "test": {...}} (y as ``labels_to_json``)."""
    return {
        "train": {"x": data.x_train.tolist(), "y": labels_to_json(data.task, data.y_train)},
        "test": {"x": data.x_test.tolist(), "y": labels_to_json(data.task, data.y_test)},
    }

# ruff: noqa: RUF001, RUF002 -- UI text uses real typography (times sign, en dash, minus)
"""The "New run" form: presets, parsing form fields into a ``RunCreate``, errors → field names.

Form fields are named like the API's JSON fields; dataset fields are dotted
(``dataset.noise``) and the hidden layers repeat (``hidden_layers`` once per
layer). Errors from pydantic (``loc`` tuples) and from the manager
(``ProblemError.field``) are mapped onto those same names, so the template can
print each message next to its input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from app.runs.errors import ProblemError
from app.runs.models import RunCreate
from app.ui.csvdata import CsvError, parse_csv

DATASET_KINDS = ("circle", "xor", "gauss", "spiral", "moons", "plane", "sine", "teacher", "custom")
KIND_LABELS = {
    "circle": "Circle",
    "xor": "XOR",
    "gauss": "Gaussians",
    "spiral": "Spiral",
    "moons": "Moons",
    "plane": "Plane (regression)",
    "sine": "Sine (regression, 1-D)",
    "teacher": "Teacher network (regression)",
    "custom": "Your own data (CSV)",
    "draw": "Draw your own",
}
TASKS = ("classification", "regression")
MULTICLASS_KINDS = ("gauss", "spiral")
ACTIVATIONS = ("tanh", "sigmoid", "relu", "leaky_relu", "linear")
OUTPUT_ACTIVATIONS = ("sigmoid", "softmax", "linear")
LOSSES = ("mse", "cross_entropy")
OPTIMIZERS = ("sgd", "momentum", "adam")
INITS = ("xavier", "he", "uniform", "normal")
DTYPES = ("float32", "float64")
# TensorFlow Playground's learning-rate menu; the input also takes any other value.
LEARNING_RATES = (
    "0.00001",
    "0.0001",
    "0.001",
    "0.003",
    "0.01",
    "0.03",
    "0.1",
    "0.3",
    "1",
    "3",
    "10",
)
SPEEDS = (
    ("", "unlimited"),
    ("1", "1 epoch/s"),
    ("5", "5 epochs/s"),
    ("20", "20 epochs/s"),
    ("100", "100 epochs/s"),
    ("1000", "1000 epochs/s"),
)
MAX_HIDDEN_LAYERS = 10


def speed_options(current: float | None) -> list[tuple[str, str, bool]]:
    """The speed menu as (value, label, selected), plus the run's own limit if not in it."""
    now = "" if current is None else f"{current:g}"
    options = [(v, label, v == now) for v, label in SPEEDS]
    if not any(selected for *_, selected in options):
        options.append((now, f"{now} epochs/s", True))
    return options


MAX_NEURONS = 1024

# The run `/` opens on when there is none yet: the spiral with little enough noise that
# its arms show, [8, 8] tanh, training at once (measured: see LEARNER_NOISE).
# noise 0.02: the arms stay clearly apart in the preview; measured with the real Trainer
# ([8, 8] tanh, lr 0.03, batch 10, data and net seeds 0-4): test loss 0.002-0.018 at epoch
# 3000 (seed 0: 0.003); at noise 0.05 one seed stalls at 0.14, at 0.1 ~0.24.
LEARNER_NOISE = "0.02"
LEARNER_EPOCHS = 3000
# Unlimited, the learner finishes its 3000 epochs in ~1.5 s: too fast to watch. At 300
# epochs/s it passes test loss 0.1 after ~3 s (a tenth of Playground's 30-40 s) and
# plays for 10 s; the live view's speed menu lifts the limit.
LEARNER_SPEED = 300.0


def learner_run() -> RunCreate:
    """The default learner run `/` creates on an empty database."""
    return RunCreate.model_validate(
        {
            "name": "spiral learner",
            "dataset": {"kind": "spiral", "noise": float(LEARNER_NOISE)},
            "hidden_layers": [8, 8],
            "activation": "tanh",
            "learning_rate": 0.03,
            "epochs": LEARNER_EPOCHS,
            "max_epochs_per_second": LEARNER_SPEED,
            "start": True,
        }
    )


DEFAULTS: dict[str, Any] = {
    "name": "",
    "dataset.kind": "spiral",
    "dataset.n_samples": "400",
    "dataset.noise": LEARNER_NOISE,
    "dataset.test_fraction": "0.2",
    "dataset.seed": "0",
    "dataset.n_classes": "2",
    "dataset.teacher_layers": "3, 5, 2",
    "dataset.teacher_activation": "sigmoid",
    "dataset.teacher_weight_scale": "1",
    "dataset.task": "classification",
    "dataset.data": "",
    "dataset.drawn": "",
    "dataset.drawn_task": "classification",
    "hidden_layers": [8, 8],
    "activation": "tanh",
    "output_activation": "",
    "loss": "",
    "learning_rate": "0.03",
    "optimizer": "sgd",
    "momentum": "0.9",
    "batch_size": "10",
    "epochs": "1000",
    "l1": "0",
    "l2": "0",
    "use_bias": True,
    "init": "xavier",
    "seed": "0",
    "dtype": "float32",
    "max_epochs_per_second": "",
    # Training controls (API.md v1.1), parsed as the live view's panel parses them.
    "lr_schedule.kind": "",
    "lr_schedule.step_size": "100",
    "lr_schedule.gamma": "0.5",
    "lr_schedule.period": "",
    "lr_schedule.min_lr": "0",
    "target_loss": "",
    "early_stopping.patience": "",
    "early_stopping.min_delta": "0",
    "start": True,
}
TRAINING_CONTROL_FIELDS = tuple(
    key for key in DEFAULTS if key.startswith(("lr_schedule.", "early_stopping.", "target_loss"))
)

# The article's experiment: a student of another shape ([8, 8] against the teacher's
# [3, 5, 2]) learns a sigmoid teacher with sigmoid units, mean squared error and plain
# full-batch gradient descent. A weight scale of 4 spreads the teacher's outputs (at 1
# they sit near 0.5 and there is little to learn). Measured (teacher seed 0, the real
# Trainer, weights x scale as API.md defines it): at scale 1 the targets' std is 0.03 and
# a constant predicts them to test loss 0.0006; at 4, std 0.21 / 0.05, constant 0.019,
# and the student at lr 3 goes 0.020 -> 0.0012 by epoch 500 -> 0.00014 by epoch 5000.
TEACHER_WEIGHT_SCALE = "4"
TEACHER_LEARNING_RATE = "3"

PRESETS: dict[str, dict[str, Any]] = {
    "teacher": {
        "name": "teacher–student",
        "dataset.kind": "teacher",
        "dataset.teacher_layers": "3, 5, 2",
        "dataset.teacher_activation": "sigmoid",
        "dataset.teacher_weight_scale": TEACHER_WEIGHT_SCALE,
        "dataset.noise": "0",
        "hidden_layers": [8, 8],
        "activation": "sigmoid",
        "output_activation": "sigmoid",
        "loss": "mse",
        "optimizer": "sgd",
        "batch_size": "",
        "learning_rate": TEACHER_LEARNING_RATE,
        "epochs": "5000",
    },
    "xor": {
        "name": "xor",
        "dataset.kind": "xor",
        "dataset.noise": "0.05",
        "hidden_layers": [4],
        "activation": "tanh",
        "learning_rate": "0.03",
        "epochs": "500",
    },
    "spiral": {
        "name": "spiral",
        "dataset.kind": "spiral",
        "dataset.noise": LEARNER_NOISE,
        "hidden_layers": [8, 8],
        "activation": "tanh",
        "learning_rate": "0.03",
        "epochs": str(LEARNER_EPOCHS),
    },
    "regression": {
        "name": "sine regression",
        "dataset.kind": "sine",
        "dataset.noise": "0.05",
        "hidden_layers": [16, 16],
        "activation": "tanh",
        "optimizer": "adam",
        "learning_rate": "0.01",
        "epochs": "1000",
    },
}
PRESET_LABELS = {
    "teacher": "Teacher–student (article)",
    "xor": "XOR",
    "spiral": "Spiral",
    "regression": "Regression",
}

CHECKBOXES = ("use_bias", "start")
NULLABLE = ("output_activation", "loss", "batch_size", "max_epochs_per_second")
INT_FIELDS = ("batch_size", "epochs", "seed")
FLOAT_FIELDS = ("learning_rate", "momentum", "l1", "l2", "max_epochs_per_second")
DATASET_INT = ("n_samples", "seed", "n_classes")
DATASET_FLOAT = ("noise", "test_fraction")
DATASET_KEYS = ("n_samples", "noise", "test_fraction", "seed")


def preset_values(preset: str | None) -> dict[str, Any]:
    """Form values: the defaults overlaid with a preset (unknown preset → defaults)."""
    values = dict(DEFAULTS)
    values["hidden_layers"] = list(DEFAULTS["hidden_layers"])
    values.update(PRESETS.get(preset or "", {}))
    return values


def form_values(form: Any) -> dict[str, Any]:
    """Raw values of a submitted form (Starlette FormData / multidict), strings kept as typed."""
    values: dict[str, Any] = {}
    for key in DEFAULTS:
        if key == "hidden_layers":
            values[key] = [str(v).strip() for v in form.getlist("hidden_layers")]
        elif key in CHECKBOXES:
            values[key] = form.get(key) is not None
        else:
            values[key] = str(form.get(key, DEFAULTS[key] if key.startswith("dataset.") else ""))
    return values


def _number(text: str, integer: bool) -> Any:
    """int/float when the text is one; otherwise the text itself, so pydantic names the field."""
    t = text.strip()
    try:
        return int(t) if integer else float(t)
    except ValueError:
        try:
            f = float(t)
        except ValueError:
            return t
        return int(f) if integer and f.is_integer() else t


def custom_rows(text: str, task: str, *, drawn: bool = False) -> tuple[list[Any], list[Any]]:
    """CSV text → (x rows, y) for a `custom` dataset (see app.ui.csvdata); CsvError
    names the row and column of a problem in plain words."""
    rows = parse_csv(text, task, drawn=drawn)
    return rows.x, rows.y


def body_from_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body (API.md POST /api/runs) the form values describe."""
    kind = str(values.get("dataset.kind", "spiral"))
    dataset: dict[str, Any] = {"kind": kind}
    keys = ("test_fraction", "seed") if kind in ("custom", "draw") else DATASET_KEYS
    for key in keys:
        raw = str(values.get(f"dataset.{key}", "")).strip()
        if raw:
            dataset[key] = _number(raw, key in DATASET_INT)
    if kind in MULTICLASS_KINDS:
        raw = str(values.get("dataset.n_classes", "")).strip()
        if raw:
            dataset["n_classes"] = _number(raw, True)
    if kind == "custom":
        task = str(values.get("dataset.task", "classification"))
        dataset["task"] = task
        dataset["x"], dataset["y"] = custom_rows(str(values.get("dataset.data", "")), task)
    if kind == "draw":  # the drawing widget's points: a `custom` dataset too
        task = str(values.get("dataset.drawn_task", "classification"))
        drawn = str(values.get("dataset.drawn", ""))
        dataset |= {"kind": "custom", "task": task}
        dataset["x"], dataset["y"] = custom_rows(drawn, task, drawn=True)
    if kind == "teacher":
        raw = str(values.get("dataset.teacher_layers", ""))
        dataset["teacher_layers"] = [_number(p, True) for p in raw.replace(" ", "").split(",") if p]
        dataset["teacher_activation"] = str(values.get("dataset.teacher_activation", "sigmoid"))
        raw = str(values.get("dataset.teacher_weight_scale", "")).strip()
        if raw:
            dataset["teacher_weight_scale"] = _number(raw, False)
    body: dict[str, Any] = {"dataset": dataset}
    name = str(values.get("name", "")).strip()
    if name:
        body["name"] = name
    body["hidden_layers"] = [
        _number(str(v), True) for v in values.get("hidden_layers", []) if str(v).strip()
    ]
    for key in ("activation", "optimizer", "init", "dtype", "output_activation", "loss"):
        raw = str(values.get(key, "")).strip()
        if raw:
            body[key] = raw
        elif key in NULLABLE:
            body[key] = None
    for key in (*INT_FIELDS, *FLOAT_FIELDS):
        raw = str(values.get(key, "")).strip()
        if raw:
            body[key] = _number(raw, key in INT_FIELDS)
        elif key in NULLABLE:
            body[key] = None
    # One parser for the schedule and stop rules: the live view's (a lazy import, since
    # settings_fields reads this module's option lists).
    from app.ui.settings_fields import parse_patch

    body.update(parse_patch({key: str(values.get(key, "")) for key in TRAINING_CONTROL_FIELDS}))
    body["use_bias"] = bool(values.get("use_bias"))
    body["start"] = bool(values.get("start"))
    return body


def parse_run_create(values: Mapping[str, Any]) -> tuple[RunCreate | None, dict[str, str]]:
    """(RunCreate, {}) or (None, {field name: message})."""
    data_field = "dataset.drawn" if values.get("dataset.kind") == "draw" else "dataset.data"
    try:
        return RunCreate.model_validate(body_from_values(values)), {}
    except CsvError as exc:
        return None, {data_field: str(exc)}
    except ValidationError as exc:
        errors = errors_from_validation(exc.errors())
        if data_field != "dataset.data" and "dataset.data" in errors:
            errors[data_field] = errors.pop("dataset.data")
        return None, errors


def field_name(loc: Sequence[Any]) -> str:
    """A pydantic ``loc`` or a dotted field path → the form field it belongs to.

    ('dataset', 'spiral', 'noise') → 'dataset.noise' (the discriminator tag is
    dropped); ('hidden_layers', 2) → 'hidden_layers'; () → '__all__'.
    """
    parts = [p for p in loc if not isinstance(p, int)]
    if parts and parts[0] == "body":
        parts = parts[1:]
    if not parts:
        return "__all__"
    if parts[0] == "dataset":
        rest = [p for p in parts[1:] if p not in DATASET_KINDS]
        if rest and rest[0] in ("x", "y"):
            return "dataset.data"  # the custom data's text box
        key = f"dataset.{rest[0]}" if rest else "dataset.kind"
        return key if key in DEFAULTS else "dataset.kind"
    return str(parts[0]) if parts[0] in DEFAULTS else "__all__"


def errors_from_validation(errors: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in errors:
        loc = tuple(err.get("loc", ()))
        key = field_name(loc)
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        if key == "dataset.data":
            msg = f"{_data_place(loc)}{msg}"
        out[key] = f"{out[key]}; {msg}" if key in out else msg
    return out


def _data_place(loc: Sequence[Any]) -> str:
    """'data row 3, input 2: ' for a pydantic loc inside the custom x (or y)."""
    names = [p for p in loc if isinstance(p, str)]
    numbers = [p for p in loc if isinstance(p, int)]
    if not numbers:
        return ""
    if names and names[-1] == "y":
        return f"data row {numbers[0] + 1}, target: "
    column = f", input {numbers[1] + 1}" if len(numbers) > 1 else ""
    return f"data row {numbers[0] + 1}{column}: "


def errors_from_problem(exc: ProblemError) -> dict[str, str]:
    key = field_name(tuple(str(exc.field).split("."))) if exc.field else "__all__"
    return {key: exc.detail}


def arch_edit(layers: Sequence[str], op: str) -> list[int]:
    """Apply an architecture-editor button: add-layer, remove-layer, inc:i, dec:i.

    Widths that do not parse count as 1; results stay within 0–10 layers of 1–1024.
    """
    widths = []
    for v in layers:
        try:
            widths.append(min(MAX_NEURONS, max(1, int(float(v)))))
        except ValueError:
            widths.append(1)
    if op == "add-layer" and len(widths) < MAX_HIDDEN_LAYERS:
        widths.append(widths[-1] if widths else 4)
    elif op == "remove-layer" and widths:
        widths.pop()
    elif ":" in op:
        action, _, index = op.partition(":")
        if index.isdigit() and int(index) < len(widths):
            i = int(index)
            if action == "inc":
                widths[i] = min(MAX_NEURONS, widths[i] + 1)
            elif action == "dec":
                widths[i] = max(1, widths[i] - 1)
    return widths

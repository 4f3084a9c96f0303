"""A run's config as one typed, frozen value: `RunConfig`.

It is API.md's `config` (every creation field but `start` and `initial_weights`, every
default filled, the head resolved, `lr_schedule` filled for the run's epochs) with a
field per key. The runs layer reads fields (`config.epochs`), changes a config by
making a new one (`config.replace(epochs=...)`), and shows it as the API's JSON
object with `public()`. Stdlib only: the training worker imports it.

The nested objects (`dataset`, `lr_schedule`, `early_stopping`) stay the API's JSON
objects: they differ by kind, and the parts that read them (app.nn.datasets, the
training controls) take them in that form. They are never changed in place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Config fields newer than some stored runs, with the value that means "as before".
ADDED_DEFAULTS: dict[str, Any] = {
    "features": None,
    "error_propagation": "chain_rule",
    "lr_schedule": None,
    "target_loss": None,
    "early_stopping": None,
}


@dataclass(frozen=True)
class RunConfig:
    name: str
    dataset: dict[str, Any]  # API.md `config.dataset`: defaults filled, no custom x/y
    hidden_layers: list[int]
    activation: str
    output_activation: str  # resolved for the task
    loss: str  # resolved for the task
    learning_rate: float
    optimizer: str
    momentum: float
    batch_size: int | None  # None: the whole training set
    epochs: int
    l1: float
    l2: float
    use_bias: bool
    init: str
    seed: int
    dtype: str
    max_epochs_per_second: float | None
    features: list[str] | None
    error_propagation: str
    lr_schedule: dict[str, Any] | None  # filled for `epochs` (models.filled_schedule)
    target_loss: float | None
    early_stopping: dict[str, Any] | None

    @classmethod
    def of(cls, config: Mapping[str, Any], *, strict: bool = True) -> RunConfig:
        """From the API's config object (a stored run's may lack the fields added since:
        they get the value that means "as before"). TypeError on an unknown key, unless
        not `strict` (a row a newer version stored: its new fields are left out)."""
        values = {**ADDED_DEFAULTS, **config}
        if not strict:
            names = {f.name for f in dataclasses.fields(cls)}
            values = {k: v for k, v in values.items() if k in names}
        if values["dataset"].get("kind") == "teacher":
            values["dataset"] = {"teacher_weight_scale": 1.0, **values["dataset"]}
        return cls(**values)

    def public(self) -> dict[str, Any]:
        """The API's `config` object (a new dict; `dataset` copied)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["dataset"] = dict(self.dataset)
        return out

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with `changes` (field names; TypeError on an unknown one)."""
        return dataclasses.replace(self, **changes)

    @property
    def is_custom(self) -> bool:
        """Trained on points of its own (stored with the run)."""
        return bool(self.dataset["kind"] == "custom")

"""RunManager.inspect: one SGD step's numbers from one weight snapshot, also while training."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.config import Settings
from app.runs.errors import ProblemError
from app.runs.models import RunCreate
from tests.runs.helpers import opened, run_async, wait_until

TINY: dict[str, Any] = {
    "dataset": {"kind": "xor", "n_samples": 40},
    "hidden_layers": [4],
    "activation": "tanh",
    "batch_size": 8,
    "dtype": "float64",
    "learning_rate": 0.2,
    "start": False,
}


def _tanh_sigmoid_bce(step: dict[str, Any]) -> dict[str, Any]:
    """Forward/backward of a tanh → sigmoid + BCE net recomputed from the step's own weights."""
    (w1, w2) = (np.array(layer["weights"]) for layer in step["layers"])
    (b1, b2) = (np.array(layer["biases"]) for layer in step["layers"])
    x, y = np.array(step["inputs"]), np.array(step["targets"])
    n = x.shape[0]
    a1 = np.tanh(x @ w1.T + b1)
    a2 = 1 / (1 + np.exp(-(a1 @ w2.T + b2)))
    d2 = (a2 - y) / n
    d1 = (d2 @ w2) * (1 - a1**2)
    loss = -np.mean(y * np.log(a2) + (1 - y) * np.log(1 - a2))
    return {"a1": a1, "a2": a2, "d1": d1, "d2": d2, "nw1": d1.T @ x, "nw2": d2.T @ a1, "loss": loss}


def _assert_consistent(step: dict[str, Any]) -> None:
    want = _tanh_sigmoid_bce(step)
    hidden, out = step["layers"]
    np.testing.assert_allclose(hidden["a"], want["a1"], rtol=1e-10)
    np.testing.assert_allclose(out["a"], want["a2"], rtol=1e-10)
    np.testing.assert_allclose(hidden["delta"], want["d1"], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(hidden["nabla_w"], want["nw1"], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(out["nabla_w"], want["nw2"], rtol=1e-9, atol=1e-15)
    assert step["loss"] == pytest.approx(want["loss"], rel=1e-10)
    lr = step["learning_rate"]
    for layer in step["layers"]:
        w, g = np.array(layer["weights"]), np.array(layer["nabla_w"])
        np.testing.assert_allclose(layer["weights_after"], w - lr * g, atol=1e-15)


@run_async
async def test_inspect_on_a_running_run_answers_from_one_snapshot(settings: Settings) -> None:
    async with opened(settings) as m:
        body = RunCreate.model_validate(TINY | {"epochs": 1_000_000, "max_epochs_per_second": 200})
        view = await m.create(body)
        await m.start(view.id)
        hub = m.hub(view.id)
        epochs = []
        # Weights come with a frame at most every FRAME_INTERVAL (10 epochs at 200/s).
        for target in (12, 36, 60):
            await wait_until(hub, lambda t=target: hub.last_epoch >= t)  # type: ignore[misc]
            step = await m.inspect(view.id, batch=1, sample=3)
            assert m.get(view.id).status == "running"
            _assert_consistent(step)
            assert step["batch_size"] == 8 and step["batch_start"] == 8
            sample = step["sample"]
            np.testing.assert_allclose(sample["layers"][0]["a"], step["layers"][0]["a"][3])
            epochs.append(step["epoch"])
        assert epochs == sorted(epochs) and epochs[-1] > epochs[0]  # it followed the training
        await m.stop(view.id)
        # stopped: the answer is the stored weights, the same every time
        first = await m.inspect(view.id, 1, 3)
        assert first == await m.inspect(view.id, 1, 3)
        weights = m.weights(view.id)
        assert first["epoch"] == weights["epoch"]
        np.testing.assert_array_equal(
            first["layers"][0]["weights"], weights["layers"][0]["weights"]
        )


@run_async
async def test_inspect_refuses_unknown_runs_and_out_of_range_indices(settings: Settings) -> None:
    async with opened(settings) as m:
        view = await m.create(RunCreate.model_validate(TINY))
        with pytest.raises(ProblemError) as unknown:
            await m.inspect("nope", 0, 0)
        assert unknown.value.status_code == 404
        for batch, sample, field in ((4, 0, "batch"), (0, 8, "sample"), (-1, 0, "batch")):
            with pytest.raises(ProblemError) as bad:
                await m.inspect(view.id, batch, sample)
            assert (bad.value.status_code, bad.value.field) == (422, field)
        # the fresh run's step uses its creation weights (epoch 0)
        step = await m.inspect(view.id, 3, 7)
        assert step["epoch"] == 0 and step["n_batches"] == 4
        _assert_consistent(step)

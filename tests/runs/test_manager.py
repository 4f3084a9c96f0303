"""RunManager without HTTP: real worker processes, tiny configs, awaited events (no sleeps)."""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from app.config import Settings
from app.runs.errors import ProblemError
from app.runs.manager import RunManager
from app.runs.models import RunCreate, RunPatch
from app.runs.run_config import RunConfig
from app.runs.worker import build_trainer
from app.storage.store import Checkpoint, Store
from tests.runs.helpers import opened, run_async, wait_settled, wait_until

TINY: dict[str, Any] = {
    "dataset": {"kind": "xor", "n_samples": 40},
    "hidden_layers": [4],
    "batch_size": 10,
    "epochs": 30,
    "start": False,
}


def body(**overrides: Any) -> RunCreate:
    return RunCreate.model_validate({**TINY, **overrides})


def flat(weights: dict[str, Any]) -> list[float]:
    out: list[float] = []
    for layer in weights["layers"]:
        out += np.ravel(layer["weights"]).tolist()
        out += layer["biases"] or []
    return out


async def started_and_moving(m: RunManager, run_id: str, epochs: int = 3) -> None:
    hub = m.hub(run_id)
    await wait_until(hub, lambda: hub.last_epoch >= epochs or hub.status != "running")


@run_async
async def test_run_completes_with_every_epoch_once(settings: Settings) -> None:
    async with opened(settings) as m:
        view = await m.create(body(start=True))
        assert view.status == "running"
        hub = m.hub(view.id)
        await wait_settled(hub)
        done = m.get(view.id)
        assert done.status == "completed" and done.epoch == 30
        metrics = m.metrics(view.id)
        assert metrics["epoch"] == list(range(1, 31))
        assert done.train_loss == metrics["train_loss"][-1]
        assert all(len(g) == 2 for g in metrics["grad_norms"])
        assert m.metrics(view.id, since=25)["epoch"] == [26, 27, 28, 29, 30]
        assert m.weights(view.id)["epoch"] == 30
        public = done.public()
        assert public["config"]["output_activation"] == "sigmoid"
        assert public["config"]["loss"] == "cross_entropy"
        assert public["config"]["dataset"]["noise"] == 0.1
        assert "start" not in public["config"]
        assert public["layer_sizes"] == [2, 4, 1]
        with pytest.raises(ProblemError) as err:
            await m.start(view.id)
        assert err.value.status_code == 409
    rows = Store(settings.db).load_runs()
    assert rows[0]["status"] == "completed" and rows[0]["epoch"] == 30


@run_async
async def test_stop_returns_the_final_stored_epoch(settings: Settings) -> None:
    async with opened(settings) as m:
        view = await m.create(body(epochs=10_000_000))
        await m.start(view.id)
        await started_and_moving(m, view.id, 5)
        stopped = await m.stop(view.id)
        assert stopped.status == "stopped" and stopped.epoch >= 5
        assert m.metrics(view.id)["epoch"][-1] == stopped.epoch
        assert m.weights(view.id)["epoch"] == stopped.epoch
        assert m.diagnostics()["running"] == 0
        again = await m.stop(view.id)  # a no-op from any other status
        assert again.epoch == stopped.epoch
        store = Store(settings.db)
        checkpoint = store.load_checkpoint(view.id)
        assert checkpoint is not None and checkpoint.epoch == stopped.epoch
        assert store.load_metrics(view.id)[-1].epoch == stopped.epoch
        assert len(store.load_metrics(view.id)) == stopped.epoch
        store.close()


@run_async
async def test_step_and_status_rules(settings: Settings) -> None:
    async with opened(settings) as m:
        run_id = (await m.create(body(epochs=10))).id
        one = await m.step(run_id)
        assert (one.status, one.epoch) == ("stopped", 1)
        four = await m.step(run_id, 3)
        assert (four.status, four.epoch) == ("stopped", 4)
        last = await m.step(run_id, 100)  # min(n, epochs - epoch)
        assert (last.status, last.epoch) == ("completed", 10)
        assert m.metrics(run_id)["epoch"] == list(range(1, 11))
        for call in (m.step(run_id), m.start(run_id)):
            with pytest.raises(ProblemError) as err:
                await call
            assert err.value.status_code == 409
        with pytest.raises(ProblemError) as err:
            await m.step(run_id, 10_001)
        assert err.value.status_code == 422 and err.value.field == "epochs"

        busy = (await m.create(body(epochs=10_000_000))).id
        await m.start(busy)
        with pytest.raises(ProblemError) as err:
            await m.step(busy)
        assert err.value.status_code == 409
        await m.stop(busy)


@run_async
async def test_reset_restores_the_creation_weights(settings: Settings) -> None:
    async with opened(settings) as m:
        view = await m.create(body())
        run_id = view.id
        created = m.weights(run_id)
        trainer = build_trainer(RunConfig.of(view.config), None)  # what the worker starts from
        net = trainer.network
        assert net.biases is not None
        assert created["layers"] == [
            {"weights": w.tolist(), "biases": b.tolist()}
            for w, b in zip(net.weights, net.biases, strict=True)
        ]
        hub = m.hub(run_id)
        await m.step(run_id, 5)
        trained, history = m.weights(run_id), m.metrics(run_id)
        assert flat(trained) != flat(created)
        resets = hub.resets
        view = await m.reset(run_id)
        assert (view.status, view.epoch, view.train_loss) == ("created", 0, None)
        assert m.weights(run_id) == created
        assert m.metrics(run_id)["epoch"] == []
        assert hub.resets == resets + 1 and len(hub.history) == 0
        # Training again from the reset reproduces the first attempt exactly.
        again = await m.step(run_id, 5)
        assert again.epoch == 5
        assert m.weights(run_id) == trained and m.metrics(run_id) == history
        # Reset while running stops first.
        await m.start(run_id)
        await started_and_moving(m, run_id, 6)
        view = await m.reset(run_id)
        assert view.status == "created" and m.diagnostics()["running"] == 0
    store = Store(settings.db)
    assert store.load_metrics(run_id) == [] and store.load_checkpoint(run_id) is None
    store.close()


@run_async
async def test_patch_while_running(settings: Settings) -> None:
    async with opened(settings) as m:
        run_id = (await m.create(body(epochs=10_000_000, max_epochs_per_second=200))).id
        await m.start(run_id)
        await started_and_moving(m, run_id, 2)
        view = await m.patch(run_id, RunPatch(learning_rate=0.5, name="renamed"))
        assert view.config["learning_rate"] == 0.5 and view.name == "renamed"
        with pytest.raises(ProblemError) as err:
            await m.patch(run_id, RunPatch(epochs=1))
        assert err.value.status_code == 422 and err.value.field == "epochs"
        # Lowering the limit to just ahead makes the worker complete there.
        target = m.get(run_id).epoch + 5
        await m.patch(run_id, RunPatch(epochs=target, max_epochs_per_second=None))
        hub = m.hub(run_id)
        await wait_settled(hub)
        done = m.get(run_id)
        assert done.status == "completed"
        assert done.epoch == done.config["epochs"] >= target
        raised = await m.patch(run_id, RunPatch(epochs=done.epoch + 3))
        assert raised.status == "stopped"
        finished = await m.step(run_id, 10)
        assert (finished.status, finished.epoch) == ("completed", done.epoch + 3)


@run_async
async def test_delete_ends_streams_and_data(settings: Settings) -> None:
    async with opened(settings) as m:
        run_id = (await m.create(body(epochs=10_000_000, start=True))).id
        hub = m.hub(run_id)
        await started_and_moving(m, run_id)
        await m.delete(run_id)
        assert hub.closed
        assert await hub.wait(hub.version, 0.01) == hub.version  # returns at once
        with pytest.raises(ProblemError) as err:
            m.get(run_id)
        assert err.value.status_code == 404
        assert m.list_runs() == [] and m.diagnostics()["running"] == 0
    store = Store(settings.db)
    assert store.load_runs() == [] and store.load_metrics(run_id) == []
    store.close()


@run_async
async def test_divergence_keeps_finite_weights(settings: Settings) -> None:
    async with opened(settings) as m:
        view = await m.create(
            body(
                dataset={"kind": "plane", "n_samples": 40},
                hidden_layers=[16],
                activation="relu",
                learning_rate=10,
                epochs=1000,
                start=True,
            )
        )
        await wait_settled(m.hub(view.id))
        run = m.get(view.id)
        assert run.status == "diverged"
        assert run.message and "diverged" in run.message
        assert run.epoch < 1000
        assert np.isfinite(flat(m.weights(view.id))).all()
        assert m.metrics(view.id)["epoch"] == list(range(1, run.epoch + 1))
        with pytest.raises(ProblemError) as err:
            await m.start(view.id)
        assert err.value.status_code == 409
        assert (await m.reset(view.id)).status == "created"


@run_async
async def test_killed_worker_fails_alone(settings: Settings) -> None:
    async with opened(settings) as m:
        victim = (await m.create(body(epochs=10_000_000, start=True))).id
        other = (await m.create(body(epochs=10_000_000, start=True))).id
        await started_and_moving(m, victim)
        await started_and_moving(m, other)
        os.kill(m.diagnostics()["workers"][victim], signal.SIGKILL)
        await wait_settled(m.hub(victim))
        failed = m.get(victim)
        assert failed.status == "failed"
        assert failed.message and "SIGKILL" in failed.message
        hub = m.hub(other)
        seen = hub.last_epoch
        await wait_until(hub, lambda: hub.last_epoch > seen + 3)
        assert m.get(other).status == "running"
        assert (await m.stop(other)).status == "stopped"


@run_async
async def test_running_runs_are_capped(settings: Settings) -> None:
    async with opened(replace(settings, max_running_runs=1)) as m:
        first = (await m.create(body(epochs=10_000_000, start=True))).id
        with pytest.raises(ProblemError) as err:
            await m.create(body(start=True))
        assert err.value.status_code == 409 and "limit is 1" in err.value.detail
        assert len(m.list_runs()) == 1  # nothing half-made
        second = (await m.create(body())).id
        for call in (m.start(second), m.step(second)):
            with pytest.raises(ProblemError) as err:
                await call
            assert err.value.status_code == 409
        await m.stop(first)
        assert (await m.start(second)).status == "running"
        await m.stop(second)


@run_async
async def test_create_limits_name_the_field(settings: Settings) -> None:
    async with opened(settings) as m:
        cases = [
            (body(hidden_layers=[1024] * 6), "hidden_layers"),
            (body(dataset={"kind": "plane"}, loss="cross_entropy"), "loss"),
            (
                body(
                    dataset={"kind": "spiral", "n_classes": 3},
                    output_activation="sigmoid",
                    loss="cross_entropy",
                ),
                "loss",
            ),
            (body(dataset={"kind": "xor"}, output_activation="softmax"), "output_activation"),
            (
                body(
                    dataset={
                        "kind": "custom",
                        "task": "classification",
                        "x": [[0], [1]],
                        "y": [0, 0],
                    }
                ),
                "dataset.y",
            ),
        ]
        for bad, field in cases:
            with pytest.raises(ProblemError) as err:
                await m.create(bad)
            assert (err.value.status_code, err.value.field) == (422, field), err.value.detail
        assert m.list_runs() == []


@run_async
async def test_custom_data_round_trips(settings: Settings) -> None:
    x = [[float(i) / 10, float(i % 3)] for i in range(20)]
    y = [i % 3 for i in range(20)]
    async with opened(settings) as m:
        view = await m.create(
            body(
                dataset={
                    "kind": "custom",
                    "task": "classification",
                    "x": x,
                    "y": y,
                    "test_fraction": 0.25,
                },
                epochs=5,
            )
        )
        assert "x" not in view.public()["config"]["dataset"]
        assert view.layer_sizes == [2, 4, 3]
        data = m.data(view.id)
        assert len(data["train"]["x"]) == 15 and len(data["test"]["y"]) == 5
        pairs = sorted(
            zip(
                map(tuple, data["train"]["x"] + data["test"]["x"]),
                data["train"]["y"] + data["test"]["y"],
                strict=True,
            )
        )
        assert pairs == sorted(zip(map(tuple, x), y, strict=True))
        done = await m.step(view.id, 5)
        assert done.status == "completed"
        prediction = m.predict(view.id, np.array(x[:4]))
        assert len(prediction["outputs"]) == 4 and len(prediction["outputs"][0]) == 3
        assert all(label in (0, 1, 2) for label in prediction["labels"])
        with pytest.raises(ProblemError) as err:
            m.predict(view.id, np.zeros((2, 3)))
        assert (err.value.status_code, err.value.field) == (422, "inputs")
    async with opened(settings) as m:  # restart: the data comes back from the store
        assert m.data(view.id) == data


@run_async
async def test_sigterm_to_a_worker_checkpoints_and_interrupts(settings: Settings) -> None:
    async with opened(settings) as m:
        run_id = (await m.create(body(epochs=10_000_000, start=True))).id
        await started_and_moving(m, run_id)
        os.kill(m.diagnostics()["workers"][run_id], signal.SIGTERM)
        await wait_settled(m.hub(run_id))
        view = m.get(run_id)
        assert view.status == "interrupted"
        assert m.metrics(run_id)["epoch"] == list(range(1, view.epoch + 1))
        store = Store(settings.db)
        checkpoint = store.load_checkpoint(run_id)
        store.close()
        assert checkpoint is not None and checkpoint.epoch == view.epoch
        assert (await m.start(run_id)).status == "running"
        await m.stop(run_id)


@run_async
async def test_a_worker_error_fails_the_run_with_its_message(settings: Settings) -> None:
    async with opened(settings) as m:
        run_id = (await m.create(body())).id
        await m.step(run_id, 2)
    store = Store(settings.db)  # a checkpoint that belongs to another network
    saved = store.load_checkpoint(run_id)
    assert saved is not None
    broken = Checkpoint(2, saved.arrays, {**saved.meta, "layer_sizes": [2, 9, 1]})
    store.commit_progress(run_id, (), broken)
    store.close()
    async with opened(settings) as m:
        view = await m.step(run_id, 1)
        assert view.status == "failed" and view.epoch == 2
        assert view.message and "training failed" in view.message and "[2, 9, 1]" in view.message
        assert (await m.reset(run_id)).status == "created"
        assert (await m.step(run_id, 1)).status == "stopped"


@run_async
async def test_large_network_ends_with_its_final_weights(settings: Settings) -> None:
    async with opened(settings) as m:
        view = await m.create(
            body(
                dataset={"kind": "xor", "n_samples": 10},
                hidden_layers=[400, 300],
                epochs=15,
                batch_size=None,
                start=True,
            )
        )
        hub = m.hub(view.id)
        assert hub.large and view.n_params > 100_000
        await wait_settled(hub)
        assert m.get(view.id).status == "completed"
        assert hub.layers_epoch == 15
        assert hub.latest_layers == m.weights(view.id)["layers"]


@run_async
async def test_concurrent_starts_respect_the_cap(settings: Settings) -> None:
    async with opened(replace(settings, max_running_runs=2)) as m:
        ids = [(await m.create(body(epochs=10_000_000))).id for _ in range(5)]
        results = await asyncio.gather(*(m.start(i) for i in ids), return_exceptions=True)
        started = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, ProblemError)]
        assert len(started) == 2 and len(refused) == 3
        assert all(e.status_code == 409 for e in refused)
        assert len(m.diagnostics()["workers"]) == 2
        for view in started:
            await m.stop(view.id)


@run_async
async def test_predict_while_training_uses_one_snapshot(settings: Settings) -> None:
    x = np.random.default_rng(1).uniform(-1, 1, (50, 2))
    async with opened(settings) as m:
        run_id = (await m.create(body(epochs=10_000_000, start=True))).id
        hub = m.hub(run_id)
        for _ in range(3):
            seen = hub.layers_version
            await wait_until(hub, lambda seen=seen: hub.layers_version > seen)
            layers = m.weights(run_id)["layers"]  # no frame can land between these two calls
            outputs = np.array(m.predict(run_id, x)["outputs"])
            a = x.astype(np.float32)
            for i, layer in enumerate(layers):
                z = a @ np.array(layer["weights"], np.float32).T + np.array(layer["biases"])
                a = np.tanh(z) if i < len(layers) - 1 else 1 / (1 + np.exp(-z))
            np.testing.assert_allclose(outputs, a, rtol=1e-5, atol=1e-6)
        await m.stop(run_id)


@run_async
async def test_finished_workers_leave_nothing_behind(settings: Settings) -> None:
    async with opened(settings) as m:
        run_id = (await m.create(body(epochs=1000))).id
        await m.step(run_id, 1)
        before = m.diagnostics()
        for _ in range(6):
            await m.step(run_id, 1)
        await m.start(run_id)
        await m.stop(run_id)
        after = m.diagnostics()
        assert after["running"] == 0 and after["workers"] == {}
        assert after["fds"] <= before["fds"]
        assert after["threads"] <= before["threads"] + 2  # the default executor may grow
        assert after["tasks"] == before["tasks"]


@run_async
async def test_every_dataset_kind_trains(settings: Settings) -> None:
    kinds = [
        ({"kind": "circle"}, [2, 4, 1], "classification"),
        ({"kind": "moons"}, [2, 4, 1], "classification"),
        ({"kind": "gauss", "n_classes": 5}, [2, 4, 5], "classification"),
        ({"kind": "spiral", "n_classes": 3}, [2, 4, 3], "classification"),
        ({"kind": "plane"}, [2, 4, 1], "regression"),
        ({"kind": "sine"}, [1, 4, 1], "regression"),
        ({"kind": "teacher", "teacher_layers": [3, 2]}, [3, 4, 2], "regression"),
    ]
    async with opened(settings) as m:
        for dataset, layer_sizes, task in kinds:
            view = await m.create(body(dataset={**dataset, "n_samples": 30}, epochs=2))
            assert (view.layer_sizes, view.task) == (layer_sizes, task)
            done = await m.step(view.id, 2)
            assert done.status == "completed", done.message
            assert (done.train_accuracy is None) == (task == "regression")
            assert len(m.data(view.id)["train"]["x"]) == 24

"""RunHub and MetricsHistory: exactly-once slicing, cached frames, wake-ups."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

import numpy as np
import orjson

from app.config import Settings
from app.nn.metrics import EpochMetrics
from app.runs.broadcast import MetricsHistory, RunHub
from app.runs.models import RunCreate, RunStatus, RunView
from tests.runs.helpers import opened, run_async, wait_settled


def row(epoch: int, loss: float = 0.5) -> EpochMetrics:
    return EpochMetrics(epoch, loss, None, 0.75, None, [0.1, float("nan")])


def view(status: RunStatus = RunStatus.running, epoch: int = 0) -> RunView:
    now = datetime.now(UTC)
    return RunView(
        id="r",
        name="r",
        status=status,
        message=None,
        config={},
        layer_sizes=[2, 3, 1],
        task="classification",
        n_params=13,
        epoch=epoch,
        train_loss=None,
        test_loss=None,
        train_accuracy=None,
        test_accuracy=None,
        created_at=now,
        updated_at=now,
    )


def test_history_slices_every_epoch_exactly_once() -> None:
    history = MetricsHistory(n_layers=2, capacity=2)
    rng = np.random.default_rng(0)
    cursor, seen, epoch = 0, [], 0
    for _ in range(200):
        n = int(rng.integers(0, 9))
        history.extend([row(e) for e in range(epoch + 1, epoch + 1 + n)])
        epoch += n
        if rng.random() < 0.5:  # a subscriber that wakes up only now and then
            chunk = history.slice(cursor)["epoch"]
            seen += chunk
            cursor = chunk[-1] if chunk else cursor
    seen += history.slice(cursor)["epoch"]
    assert seen == list(range(1, epoch + 1))
    history.extend([row(3), row(epoch)])  # replays are ignored
    assert len(history) == epoch


def test_history_keeps_only_epochs_after_every_earlier_one_within_a_batch() -> None:
    history = MetricsHistory(n_layers=2)
    history.extend([row(1), row(2)])
    history.extend([row(2), row(4), row(3), row(4), row(5), row(1)])
    assert history.slice()["epoch"] == [1, 2, 4, 5]
    # a row with fewer gradient norms than layers: NaN (None) for the rest
    history.extend([EpochMetrics(6, 1.0, None, None, None, [3.0])])
    assert history.slice(since=5)["grad_norms"] == [[3.0, None]]


def test_history_values_are_json_safe() -> None:
    history = MetricsHistory(n_layers=2)
    history.extend([row(1), EpochMetrics(2, float("inf"), 1.0, None, None, [1.0, 2.0], 0.03)])
    cols = history.slice()
    assert cols == {
        "epoch": [1, 2],
        "train_loss": [0.5, None],
        "test_loss": [None, 1.0],
        "train_accuracy": [0.75, None],
        "test_accuracy": [None, None],
        "learning_rate": [None, 0.03],
        "grad_norms": [[0.1, None], [1.0, 2.0]],
    }
    assert orjson.loads(history.encode()) == cols
    assert orjson.loads(history.encode(since=2))["epoch"] == []
    history.truncate_after(1)
    assert history.slice()["epoch"] == [1] and history.last_epoch == 1


def test_frame_json_is_shared_and_complete() -> None:
    hub = RunHub(view())
    w = [np.ones((3, 2), np.float32), np.full((1, 3), np.nan, np.float32)]
    b = [np.zeros(3, np.float32), np.zeros(1, np.float32)]
    hub.publish([row(1), row(2), row(3)], view(epoch=3), w, b)
    frame = hub.frame_json(1, True)
    assert hub.frame_json(1, True) is frame  # one encoding per cursor and version
    data = orjson.loads(frame)
    assert data["epoch"] == 3 and data["status"] == "running"
    assert data["metrics"]["epoch"] == [2, 3]
    assert data["layers"][0]["weights"] == [[1.0, 1.0]] * 3
    assert data["layers"][1]["weights"] == [[None, None, None]]  # strict JSON
    assert "layers" not in orjson.loads(hub.frame_json(1, False))
    before = hub.version
    hub.publish([row(4)], view(epoch=4))
    assert hub.version == before + 1 and hub.frame_json(1, True) is not frame
    snapshot = orjson.loads(hub.snapshot_json(2))
    assert snapshot["metrics"]["epoch"] == [3, 4] and snapshot["run"]["id"] == "r"
    assert orjson.loads(hub.status_json()) == {"status": "running", "message": None}


@run_async
async def test_wait_wakes_on_publish_and_times_out() -> None:
    hub = RunHub(view())
    assert await hub.wait(hub.version, 0.01) == 0  # timeout: nothing new
    waiter = asyncio.create_task(hub.wait(0, 30))
    await asyncio.sleep(0)  # let it park on the event
    hub.publish([row(1)], view(epoch=1))
    assert await waiter == 1
    resets = hub.resets
    hub.reset(view(RunStatus.created), [np.zeros((3, 2))], None)
    assert hub.resets == resets + 1 and len(hub.history) == 0 and hub.layers_epoch == 0
    hub.close()
    assert hub.closed and await hub.wait(hub.version, 30) == hub.version


@run_async
async def test_live_subscriber_gets_every_epoch_once(settings: Settings) -> None:
    async with opened(settings) as m:
        body = RunCreate(
            dataset={"kind": "xor", "n_samples": 40}, hidden_layers=[3], epochs=400, start=False
        )
        run_id = (await m.create(body)).id
        hub = m.hub(run_id)
        received: list[int] = []
        layers_seen = 0

        async def subscriber() -> None:
            nonlocal layers_seen
            version, cursor = hub.version, 0
            while True:
                version = await hub.wait(version, 30)
                if hub.last_epoch > cursor:
                    frame = orjson.loads(hub.frame_json(cursor, True))
                    received.extend(frame["metrics"]["epoch"])
                    layers_seen += "layers" in frame
                    cursor = frame["epoch"]
                if hub.status not in ("running", "created") and hub.last_epoch == cursor:
                    return
                await asyncio.sleep(0.005)  # a slow client: frames coalesce meanwhile

        task = asyncio.create_task(subscriber())
        await m.start(run_id)
        await wait_settled(hub)
        await asyncio.wait_for(task, 30)
        assert received == list(range(1, 401))
        assert layers_seen >= 1
        assert all(math.isfinite(x) for x in m.metrics(run_id)["train_loss"])

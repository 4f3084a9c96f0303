"""The worker's messages (app.runs.worker_messages): typed both ways over a real pipe."""

from __future__ import annotations

import multiprocessing
import pickle

import numpy as np
import pytest

from app.runs.models import RunCreate
from app.runs.record import prepare_run
from app.runs.worker import run_worker
from app.runs.worker_messages import (
    Final,
    Frame,
    SetLive,
    Shutdown,
    Stop,
    WorkerJob,
)
from app.storage.store import Checkpoint


def test_set_live_takes_the_live_fields_but_the_name_only() -> None:
    with pytest.raises(ValueError, match="name"):
        SetLive({"name": "x"})
    with pytest.raises(ValueError, match="hidden_layers"):
        SetLive({"learning_rate": 0.1, "hidden_layers": [3]})
    changes = {"learning_rate": 0.1, "max_epochs_per_second": None}
    message = SetLive(changes)
    changes["epochs"] = 5  # the message keeps its own copy
    assert message.changes == {"learning_rate": 0.1, "max_epochs_per_second": None}


@pytest.mark.parametrize("message", [Stop(), Shutdown(), SetLive({"l1": 0.5, "epochs": 9})])
def test_commands_survive_the_pipe_equal(message: object) -> None:
    assert pickle.loads(pickle.dumps(message)) == message


def _job(target: int, epochs: int = 50) -> WorkerJob:
    body = RunCreate.model_validate(
        {"dataset": {"kind": "xor", "n_samples": 40}, "hidden_layers": [3], "epochs": epochs}
    )
    run, _ = prepare_run(body)
    return WorkerJob(config=run.config, target=target, checkpoint_interval=0.0)


def _messages(job: WorkerJob, commands: tuple[object, ...] = ()) -> list[object]:
    """Everything a real worker process sends for `job` (commands sent first)."""
    ctx = multiprocessing.get_context("forkserver")
    parent, child = ctx.Pipe(duplex=True)
    process = ctx.Process(target=run_worker, args=(child, job), daemon=True)
    for command in commands:
        parent.send(command)
    process.start()
    child.close()
    received = []
    try:
        while parent.poll(60):
            try:
                received.append(parent.recv())
            except EOFError:
                break
    finally:
        process.join(10)
        parent.close()
    return received


def test_a_worker_sends_frames_then_one_final_with_its_checkpoint() -> None:
    messages = _messages(_job(target=3))
    *frames, final = messages
    assert all(isinstance(m, Frame) for m in frames)
    assert isinstance(final, Final)
    assert final.reason == "target" and final.epoch == 3
    epochs = [row.epoch for m in messages for row in m.metrics]  # type: ignore[attr-defined]
    assert epochs == [1, 2, 3]  # every epoch exactly once, in order
    assert isinstance(final.state, Checkpoint) and final.state.epoch == 3
    assert final.params is not None
    np.testing.assert_array_equal(final.state.arrays["params"], final.params)
    assert [epoch for epoch, _ in final.snapshots][-1] == 3  # the last epoch is kept


def test_a_stop_sent_before_the_first_epoch_ends_the_worker_at_once() -> None:
    messages = _messages(_job(target=50), commands=(Stop(),))
    assert len(messages) == 1
    final = messages[0]
    assert isinstance(final, Final) and final.reason == "stopped" and final.epoch == 0
    assert final.metrics == ()


def test_a_shutdown_is_reported_as_such() -> None:
    (final,) = _messages(_job(target=50), commands=(Shutdown(),))
    assert isinstance(final, Final) and final.reason == "shutdown"


def test_set_live_epochs_ends_training_at_the_new_count() -> None:
    *_, final = _messages(_job(target=50), commands=(SetLive({"epochs": 2}),))
    assert isinstance(final, Final) and final.reason == "completed" and final.epoch == 2

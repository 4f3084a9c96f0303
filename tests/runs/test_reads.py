"""The heavy reads' encoders and the job limiter that runs them off the event loop."""

from __future__ import annotations

import asyncio
import json
import threading

import numpy as np
import pytest

from app.runs import reads
from app.runs.jobs import JobLimiter


def reference(a: np.ndarray) -> object:
    """What /weights always meant: Python floats, non-finite as null."""
    return json.loads(json.dumps(a.astype(np.float64).tolist()).replace("NaN", "null"))


@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 13])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(23, dtype=np.float64).reshape(23, 1) / 7,
        np.linspace(-1, 1, 30).reshape(5, 6),
        np.array([0.1, np.nan, np.inf, -np.inf, 1e-300], dtype=np.float64),
        np.array([[0.1, 0.2], [0.3, np.float32(0.7)]], dtype=np.float32),
        np.zeros((0, 4)),
        np.zeros(0),
    ],
)
def test_encode_array_is_the_json_of_its_float64_values_whatever_the_slices(
    array: np.ndarray, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reads, "CHUNK", chunk)
    text = reads.encode_array(array)
    decoded = json.loads(text)
    expected = reference(np.where(np.isfinite(array), array, np.nan))
    assert decoded == expected
    # float32 weights are written as the float64 numbers they are (as tolist() gives them).
    if array.dtype == np.float32 and array.size:
        assert decoded[0][0] == float(np.float32(0.1)) != 0.1


def test_weights_pieces_join_to_the_whole_body(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reads, "CHUNK", 5)
    monkeypatch.setattr(reads, "PIECE", 64)
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(4, 3)), rng.normal(size=(2, 4))]
    biases = [rng.normal(size=4), rng.normal(size=2)]
    pieces = reads.weights_parts(7, weights, biases)
    assert len(pieces) > 2 and all(len(p) >= 64 for p in pieces[:-1])
    body = json.loads(b"".join(pieces))
    assert body == {
        "epoch": 7,
        "layers": [
            {"weights": w.tolist(), "biases": b.tolist()}
            for w, b in zip(weights, biases, strict=True)
        ],
    }
    no_bias = json.loads(reads.encode_weights(0, weights, None))
    assert [layer["biases"] for layer in no_bias["layers"]] == [None, None]


def test_at_most_two_jobs_run_and_a_cancelled_wait_keeps_its_slot_until_the_thread_ends() -> None:
    async def scenario() -> None:
        jobs = JobLimiter(2)
        release = threading.Event()
        started = threading.Semaphore(0)

        def job(i: int) -> int:
            started.release()
            release.wait(30)
            return i

        tasks = [asyncio.create_task(jobs.run(job, i)) for i in range(4)]
        for _ in range(2):
            await asyncio.to_thread(started.acquire, True, 30)
        await asyncio.sleep(0)  # let the other two reach the semaphore
        assert (jobs.running, jobs.waiting) == (2, 2)
        tasks[0].cancel()  # its client went away; its thread still runs
        await asyncio.gather(tasks[0], return_exceptions=True)
        await asyncio.sleep(0)
        assert (jobs.running, jobs.waiting) == (2, 2)  # no third thread started
        release.set()
        assert await asyncio.gather(*tasks[1:]) == [1, 2, 3]
        assert jobs.stats().done == 4 and jobs.running == 0
        jobs.shutdown()

    asyncio.run(scenario())

"""Teacher beside student (/runs/{id}/teacher): the gap against the teacher's clean outputs."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.ui import teacher_view
from app.ui.maps import normalise_layers

TEACHER_RUN: dict[str, Any] = {
    "start": False,
    "dataset": {"kind": "teacher", "teacher_layers": [3, 4, 2], "noise": 0.1, "n_samples": 120},
    "hidden_layers": [5],
    "activation": "tanh",
    "learning_rate": 0.1,
    "batch_size": 10,
    "epochs": 100,
}


def _create(client: TestClient, body: dict[str, Any], steps: int = 0) -> str:
    response = client.post("/api/runs", json=body)
    assert response.status_code == 201, response.text
    run_id = str(response.json()["id"])
    if steps:
        assert client.post(f"/api/runs/{run_id}/step", json={"epochs": steps}).status_code == 200
    return run_id


def _forward(layers: list[dict[str, Any]], x: np.ndarray, hidden: Any, output: Any) -> np.ndarray:
    """An independent forward pass: a = f(W a + b) per layer."""
    a = x
    for i, layer in enumerate(layers):
        z = a @ np.array(layer["weights"]).T + np.array(layer["biases"])
        a = output(z) if i == len(layers) - 1 else hidden(z)
    return a


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _shown_gap(html: str, epoch: int) -> float:
    match = re.search(rf'<tr data-epoch="{epoch}"><td>[^<]*</td><td title="([^"]+)">', html)
    assert match, f"no gap row for epoch {epoch}"
    return float(match.group(1))


def test_gap_at_kept_epochs_is_the_mse_to_the_teachers_clean_outputs(client: TestClient) -> None:
    run_id = _create(client, TEACHER_RUN, steps=25)
    page = client.get(f"/runs/{run_id}/teacher")
    assert page.status_code == 200
    teacher = client.get(f"/api/runs/{run_id}/teacher").json()
    assert teacher["activation"] == "sigmoid"
    x = np.array(client.get(f"/api/runs/{run_id}/data").json()["test"]["x"])
    clean = _forward(teacher["layers"], x, _sigmoid, _sigmoid)
    for epoch in (0, 25):
        weights = client.get(f"/api/runs/{run_id}/weights", params={"epoch": epoch}).json()
        assert weights["epoch"] == epoch
        student = _forward(weights["layers"], x, np.tanh, lambda z: z)  # linear output
        expected = float(np.mean((student - clean) ** 2))
        assert _shown_gap(page.text, epoch) == pytest.approx(expected, rel=1e-12)
    # the gap shrinks as the student learns, so the two are not the same number
    assert _shown_gap(page.text, 25) < _shown_gap(page.text, 0)
    html = page.text
    assert 'id="teacher-network"' in html and 'id="student-network"' in html
    assert 'id="teacher-outputs"' in html  # 3 inputs: a table of outputs, no plane map
    assert html.count('class="diagonal"') == 1 and "<circle" in html  # the scatter, y = x
    assert f'href="/runs/{run_id}"' in html


def test_teacher_outputs_are_the_data_without_noise(client: TestClient) -> None:
    body = TEACHER_RUN | {"dataset": TEACHER_RUN["dataset"] | {"noise": 0.0}}
    run_id = _create(client, body)
    raw = client.get(f"/api/runs/{run_id}/teacher").json()
    teacher = teacher_view.Teacher(normalise_layers(raw), raw["activation"])
    data = client.get(f"/api/runs/{run_id}/data").json()
    x, name = teacher_view.eval_inputs(data)
    assert name == "test"
    np.testing.assert_allclose(
        teacher_view.teacher_outputs(teacher, x), data["test"]["y"], atol=1e-12
    )


def test_two_input_teacher_gets_both_maps_on_one_scale(client: TestClient) -> None:
    body = TEACHER_RUN | {"dataset": {"kind": "teacher", "teacher_layers": [2, 3, 1]}}
    run_id = _create(client, body, steps=3)
    html = client.get(f"/runs/{run_id}/teacher").text
    assert 'id="teacher-map"' in html and 'id="student-map"' in html
    assert 'id="teacher-outputs"' not in html


def test_output_gap_and_empty_test_set() -> None:
    assert teacher_view.output_gap(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]])) == 2.5
    data = {"train": {"x": [[1.0], [2.0]], "y": [[0.0], [1.0]]}, "test": {"x": [], "y": []}}
    x, name = teacher_view.eval_inputs(data)
    assert name == "training" and x.shape == (2, 1)


def test_not_found_for_other_runs_and_link_only_on_teacher_runs(client: TestClient) -> None:
    other = _create(client, {"start": False, "dataset": {"kind": "xor"}, "hidden_layers": [3]})
    response = client.get(f"/runs/{other}/teacher")
    assert response.status_code == 404
    assert "does not learn from a teacher network" in response.text
    assert client.get("/runs/nope/teacher").status_code == 404
    assert 'id="teacher-link"' not in client.get(f"/runs/{other}").text
    teacher_run = _create(client, TEACHER_RUN)
    live = client.get(f"/runs/{teacher_run}").text
    assert f'id="teacher-link" href="/runs/{teacher_run}/teacher"' in live
    assert f'id="history-link" href="/runs/{teacher_run}/history"' in live
    # not trained yet: no kept weights, the page still opens and says so
    untrained = client.get(f"/runs/{teacher_run}/teacher")
    assert untrained.status_code == 200 and "No weights kept yet" in untrained.text

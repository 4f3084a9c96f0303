"""The diagram's edit routes (app/ui/edit_routes.py) through TestClient(create_app(settings))."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

HX = {"HX-Request": "true"}


def make_run(client: TestClient, **body: Any) -> str:
    payload: dict[str, Any] = {
        "start": False,
        "dataset": {"kind": "spiral", "n_samples": 60},
        "hidden_layers": [8, 8],
    }
    payload.update(body)
    response = client.post("/api/runs", json=payload)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def run(client: TestClient, run_id: str) -> dict[str, Any]:
    return dict(client.get(f"/api/runs/{run_id}").json())


def structure(client: TestClient, run_id: str, **form: str) -> Any:
    return client.post(f"/ui/runs/{run_id}/structure", data=form, headers=HX)


# ---------------------------------------------------------------- layers and neurons


def test_plus_on_a_layer_reinitialises_the_run_with_one_more_neuron(client: TestClient) -> None:
    run_id = make_run(client)
    client.post(f"/api/runs/{run_id}/step", json={"epochs": 3})
    response = structure(client, run_id, hidden_layers="8,9")
    assert response.status_code == 200, response.text
    assert "2\u20138\u20139\u20131" in response.text  # the shape, en dashes
    after = run(client, run_id)
    assert after["layer_sizes"] == [2, 8, 9, 1] and after["epoch"] == 0
    page = client.get(f"/runs/{run_id}").text
    assert 'data-layers="8,10"' in page  # the diagram now offers the next step
    response = structure(client, run_id, hidden_layers="")
    assert response.status_code == 200 and run(client, run_id)["layer_sizes"] == [2, 1]


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ("8,1025", "layer 2: at most 1,024 neurons"),
        ("0,8", "layer 1: at least 1 neuron"),
        (",".join(["2"] * 11), "at most 10 hidden layers"),
        ("8,x", "hidden layers: whole numbers"),
    ],
)
def test_refused_shapes_are_named_in_plain_words_and_change_nothing(
    client: TestClient, layers: str, message: str
) -> None:
    run_id = make_run(client)
    response = structure(client, run_id, hidden_layers=layers)
    assert response.status_code == 422
    assert message in response.text and 'data-error="true"' in response.text
    assert run(client, run_id)["layer_sizes"] == [2, 8, 8, 1]


def test_an_unknown_run_is_a_404(client: TestClient) -> None:
    assert structure(client, "nope", hidden_layers="8").status_code == 404
    assert client.get("/ui/runs/nope/weight?key=1.0.0").status_code == 404


# ---------------------------------------------------------------- input features


def test_toggling_features_patches_the_ordered_list(client: TestClient) -> None:
    run_id = make_run(client)
    response = structure(client, run_id, features="x1_sq,x1,x2")
    assert response.status_code == 200, response.text
    after = run(client, run_id)
    assert after["config"]["features"] == ["x1", "x2", "x1_sq"]  # the Playground's order
    assert after["layer_sizes"] == [3, 8, 8, 1]
    page = client.get(f"/runs/{run_id}").text
    network = page[page.index('id="network"') : page.index('id="output-stack"')]
    assert network.count('aria-pressed="true"') == 3
    assert 'data-kind="plane"' in page  # the output view still draws the raw 2-D plane
    refused = structure(client, run_id, features="")
    assert refused.status_code == 422 and "at least one input feature" in refused.text
    assert structure(client, run_id, features="x3").status_code == 422
    assert run(client, run_id)["config"]["features"] == ["x1", "x2", "x1_sq"]


# ---------------------------------------------------------------- one weight


def test_setting_a_weight_replaces_exactly_that_value(client: TestClient) -> None:
    run_id = make_run(client)
    client.post(f"/api/runs/{run_id}/step", json={"epochs": 2})
    before = client.get(f"/api/runs/{run_id}/weights").json()["layers"]
    current = before[1]["weights"][3][5]
    editor = client.get(f"/ui/runs/{run_id}/weight", params={"key": "2.3.5"})
    assert editor.status_code == 200
    assert (
        f'value="{current!r}"' in editor.text
        and "From layer 1, neuron 6 to layer 2, neuron 4" in editor.text
    )
    response = client.post(
        f"/ui/runs/{run_id}/weight", data={"key": "2.3.5", "value": "-0.123456789"}, headers=HX
    )
    assert response.status_code == 200, response.text
    assert "w = -0.123456789" in response.text
    after = client.get(f"/api/runs/{run_id}/weights").json()["layers"]
    changed = [
        (li, name, idx)
        for li, (old, new) in enumerate(zip(before, after, strict=True))
        for name in ("weights", "biases")
        for idx, (a, b) in enumerate(zip(_flat(old[name]), _flat(new[name]), strict=True))
        if a != b
    ]
    assert changed == [(1, "weights", 3 * 8 + 5)]
    assert math.isclose(after[1]["weights"][3][5], -0.123456789, rel_tol=1e-6)  # float32 run
    # A bias: the key has no column.
    response = client.post(
        f"/ui/runs/{run_id}/weight", data={"key": "3.0", "value": "0.5"}, headers=HX
    )
    assert response.status_code == 200 and "b = 0.5" in response.text
    assert client.get(f"/api/runs/{run_id}/weights").json()["layers"][2]["biases"] == [0.5]


def _flat(values: Any) -> list[float]:
    if values is None:
        return []
    return [v for row in values for v in (row if isinstance(row, list) else [row])]


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", "1e999", "abc", ""])
def test_non_finite_or_unreadable_values_are_a_422(client: TestClient, value: str) -> None:
    run_id = make_run(client)
    before = client.get(f"/api/runs/{run_id}/weights").json()
    response = client.post(
        f"/ui/runs/{run_id}/weight", data={"key": "1.0.0", "value": value}, headers=HX
    )
    assert response.status_code == 422
    assert "value: enter a" in response.text
    assert client.get(f"/api/runs/{run_id}/weights").json() == before


@pytest.mark.parametrize("key", ["4.0.0", "1.8.0", "1.0.2", "x", "1", "1.0.0.0"])
def test_a_key_outside_the_network_is_a_422(client: TestClient, key: str) -> None:
    run_id = make_run(client)
    response = client.post(f"/ui/runs/{run_id}/weight", data={"key": key, "value": "1"}, headers=HX)
    assert response.status_code == 422 and "weight:" in response.text


def test_editing_a_weight_while_running_says_to_pause(client: TestClient) -> None:
    run_id = make_run(client, epochs=100_000, max_epochs_per_second=5)
    assert client.post(f"/api/runs/{run_id}/start").status_code == 200
    try:
        editor = client.get(f"/ui/runs/{run_id}/weight", params={"key": "1.0.0"})
        assert editor.status_code == 200
        assert "Pause the run to edit a weight" in editor.text and " disabled>" in editor.text
        response = client.post(
            f"/ui/runs/{run_id}/weight", data={"key": "1.0.0", "value": "1"}, headers=HX
        )
        assert response.status_code == 409
        assert "Pause the run to edit a weight" in response.text
    finally:
        client.post(f"/api/runs/{run_id}/stop")

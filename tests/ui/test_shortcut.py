"""One click compares the article's shortcut with the chain rule: two new runs of a
run's settings and data, one per method, side by side on /compare."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.ui import settings

ARTICLE = {
    "dataset": {"kind": "teacher", "n_samples": 60},
    "hidden_layers": [4],
    "activation": "sigmoid",
    "loss": "mse",
    "batch_size": None,
    "learning_rate": 2.0,
    "epochs": 20,
    "start": False,
}


def test_the_shortcut_and_the_chain_rule_side_by_side(client: TestClient) -> None:
    run = client.post("/api/runs", json={**ARTICLE, "name": "article"}).json()
    client.post(f"/api/runs/{run['id']}/step", json={"epochs": 5})
    answer = client.post(f"/ui/runs/{run['id']}/compare-shortcut")
    assert answer.status_code == 200
    target = answer.headers["HX-Redirect"]
    assert target.startswith("/compare?runs=")
    made = target.removeprefix("/compare?runs=").split(",")
    runs = [client.get(f"/api/runs/{i}").json() for i in made]
    assert [r["config"]["error_propagation"] for r in runs] == ["chain_rule", "weights_only"]
    assert [r["name"] for r in runs] == ["article · chain rule", "article · the shortcut"]
    for made_run in runs:  # the same settings and data, from epoch 0
        same = {
            k: v for k, v in made_run["config"].items() if k not in ("name", "error_propagation")
        }
        assert same == {
            k: v for k, v in run["config"].items() if k not in ("name", "error_propagation")
        }
        assert (
            client.get(f"/api/runs/{made_run['id']}/data").json()
            == client.get(f"/api/runs/{run['id']}/data").json()
        )
    page = client.get(f"/compare?runs={made[0]}&runs={made[1]}").text
    assert "article · chain rule" in page and "article · the shortcut" in page
    for made_id in made:
        client.post(f"/api/runs/{made_id}/stop")


def test_a_run_the_shortcut_cannot_train_is_said_in_words(client: TestClient) -> None:
    body: dict[str, Any] = {**ARTICLE, "dataset": {"kind": "xor", "n_samples": 40}, "loss": None}
    run = client.post("/api/runs", json=body).json()
    before = len(client.get("/api/runs").json()["runs"])
    answer = client.post(f"/ui/runs/{run['id']}/compare-shortcut")
    assert "needs the mse loss" in answer.text and "HX-Redirect" not in answer.headers
    assert len(client.get("/api/runs").json()["runs"]) == before  # nothing half-made
    network = settings.settings_view(run).groups[1]
    assert network.action is not None and "not MSE" in network.action.disabled

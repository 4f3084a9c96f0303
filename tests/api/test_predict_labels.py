"""A prediction whose output is not finite (a diverged or huge net) gets no made-up class."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import strict_json

# No hidden layer and a linear output: the output is w·x + b, so inputs near the
# float64 maximum overflow it to ±inf (or nan when the terms cancel).
HUGE = 1e308


@pytest.mark.parametrize(
    "dataset", [{"kind": "xor", "n_samples": 20}, {"kind": "gauss", "n_classes": 3}]
)
def test_non_finite_outputs_have_null_labels(client: TestClient, dataset: dict[str, Any]) -> None:
    created = client.post(
        "/api/runs",
        json={
            "dataset": dataset,
            "hidden_layers": [],
            "output_activation": "linear",
            "loss": "mse",
            "start": False,
        },
    )
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    response = client.post(
        f"/api/runs/{run_id}/predict", json={"inputs": [[HUGE, HUGE], [0.1, -0.2]]}
    )
    assert response.status_code == 200
    body = strict_json(response.text)
    assert None in body["outputs"][0]
    assert body["labels"][0] is None
    # The finite row keeps its class, computed as documented.
    finite = body["outputs"][1]
    assert None not in finite
    expected = int(finite[0] >= 0.5) if len(finite) == 1 else finite.index(max(finite))
    assert body["labels"][1] == expected

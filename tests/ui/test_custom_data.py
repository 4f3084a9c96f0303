"""Your own data in the "New run" form: CSV text -> a `custom` dataset."""

from __future__ import annotations

import html
from typing import Any

from fastapi.testclient import TestClient

from app.ui.forms import custom_rows
from tests.ui.test_pages import FORM, HX

CSV = """# x1, x2, label
0.5, 0.5, 1
-0.5; -0.5; 0
0.4 0.6 1

-0.6,-0.4,0
0.7, 0.2, 1
-0.2, -0.8, 0
"""


def custom_form(**changes: str) -> dict[str, Any]:
    return (
        FORM
        | {"dataset.kind": "custom", "dataset.task": "classification"}
        | {"dataset.data": CSV}
        | changes
    )


def test_csv_rows_become_inputs_and_targets() -> None:
    x, y = custom_rows(CSV, "classification")
    assert x == [[0.5, 0.5], [-0.5, -0.5], [0.4, 0.6], [-0.6, -0.4], [0.7, 0.2], [-0.2, -0.8]]
    assert y == [1, 0, 1, 0, 1, 0] and all(isinstance(v, int) for v in y)
    xr, yr = custom_rows("1 2.5\n2 4.75\n", "regression")
    assert xr == [[1.0], [2.0]] and yr == [2.5, 4.75]


def test_the_form_creates_a_run_on_the_data_as_given(client: TestClient) -> None:
    response = client.post("/ui/runs", data=custom_form(), headers=HX)
    run_id = response.headers["HX-Redirect"].removeprefix("/runs/")
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["config"]["dataset"]["kind"] == "custom" and run["layer_sizes"] == [2, 4, 1]
    data = client.get(f"/api/runs/{run_id}/data").json()
    rows = sorted(
        (tuple(x), y)
        for part in ("train", "test")
        for x, y in zip(data[part]["x"], data[part]["y"], strict=True)
    )
    assert rows == sorted(
        zip(map(tuple, custom_rows(CSV, "classification")[0]), [1, 0, 1, 0, 1, 0], strict=True)
    )


def test_a_cell_that_is_not_a_number_is_named_by_row_and_input(client: TestClient) -> None:
    before = client.get("/api/runs").json()["runs"]
    page = client.post(
        "/ui/runs", data=custom_form(**{"dataset.data": "0.1, 0.2, 1\n0.3, oops, 0\n"}), headers=HX
    )
    assert "HX-Redirect" not in page.headers
    text = html.unescape(page.text)
    assert 'id="error-dataset-data"' in page.text
    assert "row 2, column 2: 'oops' is not a number" in text
    assert "oops" in text  # what was typed stays in the box
    assert client.get("/api/runs").json()["runs"] == before


def test_ragged_rows_and_bad_labels_are_refused_next_to_the_data(client: TestClient) -> None:
    for data in ("0.1, 0.2, 1\n0.3, 0\n", "0.1, 0.2, 1.5\n0.3, 0.4, 0\n"):
        page = client.post("/ui/runs", data=custom_form(**{"dataset.data": data}), headers=HX)
        assert "HX-Redirect" not in page.headers
        assert 'id="error-dataset-data"' in page.text, data


def test_the_preview_draws_custom_points(client: TestClient) -> None:
    fields = {k: v for k, v in custom_form().items() if k.startswith("dataset.")}
    preview = client.post("/ui/dataset-preview", data=fields, headers=HX)
    assert preview.status_code == 200
    assert preview.text.count("<circle") == 6

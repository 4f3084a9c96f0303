"""Your own data in the "New run" form: CSV text -> a `custom` dataset."""

from __future__ import annotations

import html
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.ui.csvdata import CsvError, parse_csv
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


# ---------------------------------------------------------------- the CSV parser


def test_a_first_row_without_numbers_is_a_header() -> None:
    rows = parse_csv("x1,x2,label\n0.5,0.5,1\n-0.5,-0.5,0\n", "classification")
    assert rows.header == ["x1", "x2", "label"]
    assert rows.x == [[0.5, 0.5], [-0.5, -0.5]] and rows.y == [1, 0]
    plain = parse_csv("0.5\t0.5\t1\n-0.5\t-0.5\t0\n", "classification")
    assert plain.header is None and plain.y == [1, 0]


@pytest.mark.parametrize(
    ("text", "task", "message"),
    [
        # rows are the file's lines, so the header, comments and blanks count
        (
            "x1,x2,y\n0.1,0.2,1\n0.3,abc,0\n",
            "classification",
            "row 3, column 2: 'abc' is not a number",
        ),
        (
            "# data\n\n0.1,0.2,1\n0.3,0.4,oops\n",
            "regression",
            "row 4, column 3: 'oops' is not a number",
        ),
        (
            "0.1,0.2,1\nnan,0.4,0\n",
            "classification",
            "row 2, column 1: 'nan' is not a finite number",
        ),
        (
            "0.1,0.2,1\n0.3,0.4,-inf\n",
            "regression",
            "row 2, column 3: '-inf' is not a finite number",
        ),
        ("0.1,0.2,1\n0.3,0\n", "classification", "row 2 has 2 columns, but row 1 has 3"),
        ("0.1\n0.3\n", "regression", "row 1: needs at least one input and a target (2 columns)"),
        (
            "0.1,0.2,1\n0.3,0.4,1.5\n",
            "classification",
            "row 2, column 3: the class label '1.5' must be a whole number",
        ),
        (
            "0.1,0.2,-1\n0.3,0.4,1\n",
            "classification",
            "row 1, column 3: the class label '-1' must be a whole number",
        ),
        (
            "0.1,0.2,1\n0.3,0.4,1\n",
            "classification",
            "every row is class 1: classification needs at least two classes",
        ),
        ("a,b,c\n", "classification", "no data rows"),
        ("", "regression", "no data rows"),
        ("0.1,0.2,1\n", "regression", "at least 2 data rows are needed"),
    ],
)
def test_csv_errors_name_the_row_and_column_in_plain_words(
    text: str, task: str, message: str
) -> None:
    with pytest.raises(CsvError) as caught:
        parse_csv(text, task)
    assert message in str(caught.value)


def test_regression_targets_stay_numbers() -> None:
    rows = parse_csv("x,y\n-1,0.25\n1,-0.75\n", "regression")
    assert rows.x == [[-1.0], [1.0]] and rows.y == [0.25, -0.75]


def test_a_csv_file_with_a_header_trains_through_the_form(client: TestClient) -> None:
    data = "x1;x2;class\n" + CSV
    response = client.post("/ui/runs", data=custom_form(**{"dataset.data": data}), headers=HX)
    run_id = response.headers["HX-Redirect"].removeprefix("/runs/")
    assert client.get(f"/api/runs/{run_id}").json()["layer_sizes"] == [2, 4, 1]


def test_the_new_run_form_takes_the_training_controls(client: TestClient) -> None:
    from app.ui import forms

    values = forms.preset_values(None) | {
        "lr_schedule.kind": "step",
        "lr_schedule.step_size": "20",
        "lr_schedule.gamma": "0.8",
        "target_loss": "0.05",
        "early_stopping.patience": "30",
    }
    body = forms.body_from_values(values)
    assert body["lr_schedule"] == {"kind": "step", "step_size": 20, "gamma": 0.8}
    assert body["target_loss"] == 0.05
    assert body["early_stopping"] == {"patience": 30, "min_delta": 0.0}
    plain = forms.body_from_values(forms.preset_values(None))
    assert plain["lr_schedule"] is None and plain["early_stopping"] is None
    assert plain["target_loss"] is None
    page = client.get("/ui/new-run").text
    assert 'name="lr_schedule.kind"' in page and 'name="early_stopping.patience"' in page

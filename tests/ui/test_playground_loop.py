"""The playground loop's pages: / opens on a learner run, the runs list at /runs, presets,
drawn data (the new-run form and /runs/{id}/draw) and the shareable /descent."""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from app.runs.models import RunCreate
from app.ui import forms
from tests.ui.test_pages import FORM, HX, make_run, step

# ---------------------------------------------------------------- home


def test_home_on_an_empty_database_creates_the_learner_run_and_opens_it(
    client: TestClient,
) -> None:
    assert client.get("/api/runs").json()["runs"] == []
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303
    run_id = response.headers["location"].removeprefix("/runs/")
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["config"]["dataset"]["kind"] == "spiral"
    assert run["config"]["dataset"]["noise"] == float(forms.LEARNER_NOISE) == 0.02
    assert run["config"]["hidden_layers"] == [8, 8] and run["config"]["activation"] == "tanh"
    assert run["status"] in ("running", "completed")  # started at once
    assert client.get(response.headers["location"]).status_code == 200

    # A second visit opens the same run: no second default run.
    again = client.get("/", follow_redirects=False)
    assert again.headers["location"] == f"/runs/{run_id}"
    assert [r["id"] for r in client.get("/api/runs").json()["runs"]] == [run_id]


def test_home_opens_the_most_recently_updated_run(client: TestClient) -> None:
    older = make_run(client, name="older")
    newer = make_run(client, name="newer")
    assert client.get("/", follow_redirects=False).headers["location"] == f"/runs/{newer}"
    step(client, older, 2)  # training updates it
    assert client.get("/", follow_redirects=False).headers["location"] == f"/runs/{older}"
    assert len(client.get("/api/runs").json()["runs"]) == 2


def test_runs_page_keeps_the_list_and_the_form_and_the_nav_links_them(
    client: TestClient,
) -> None:
    page = client.get("/runs").text
    assert 'id="runs-list"' in page and 'id="new-run"' in page
    nav = page[page.index('<nav class="nav"') : page.index("</nav>")]
    for href, label in (
        ("/runs", "Runs"),
        ("/runs#new-run", "New run"),
        ("/descent", "Gradient descent"),
        ("/docs", "API"),
    ):
        assert re.search(rf'href="{re.escape(href)}"[^>]*>{label}</a>', nav), label
    run_id = make_run(client)
    deleted = client.post(f"/ui/runs/{run_id}/delete", headers=HX)
    assert deleted.headers["HX-Redirect"] == "/runs"


# ---------------------------------------------------------------- presets


def preset_body(preset: str) -> RunCreate:
    body, errors = forms.parse_run_create(forms.preset_values(preset))
    assert body is not None, errors
    return body


def test_the_teacher_preset_is_the_articles_experiment() -> None:
    body = preset_body("teacher").model_dump()
    dataset = body["dataset"]
    assert dataset["kind"] == "teacher" and dataset["teacher_layers"] == [3, 5, 2]
    assert dataset["teacher_weight_scale"] == 4 and dataset["teacher_activation"] == "sigmoid"
    assert body["hidden_layers"] == [8, 8]  # a student of another shape than the teacher
    assert body["activation"] == "sigmoid" and body["output_activation"] == "sigmoid"
    assert body["loss"] == "mse" and body["optimizer"] == "sgd"
    assert body["batch_size"] is None  # full batch: plain gradient descent


def test_the_spiral_preset_and_the_learner_run_share_the_measured_noise() -> None:
    spiral = preset_body("spiral").model_dump()
    learner = forms.learner_run().model_dump()
    for body in (spiral, learner):
        assert body["dataset"]["kind"] == "spiral" and body["dataset"]["noise"] == 0.02
        assert body["hidden_layers"] == [8, 8] and body["activation"] == "tanh"
    assert learner["start"] is True and learner["epochs"] == forms.LEARNER_EPOCHS


# ---------------------------------------------------------------- drawn data


def test_the_form_trains_on_drawn_points(client: TestClient) -> None:
    drawn = "-0.5, 0.5, 0\n0.5, -0.5, 1\n0.25, 0.75, 1"
    data = FORM | {
        "dataset.kind": "draw",
        "dataset.drawn": drawn,
        "dataset.drawn_task": "classification",
        "dataset.test_fraction": "0",
    }
    response = client.post("/ui/runs", data=data, headers=HX)
    run_id = response.headers["HX-Redirect"].removeprefix("/runs/")
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["config"]["dataset"]["kind"] == "custom" and run["task"] == "classification"
    train = client.get(f"/api/runs/{run_id}/data").json()["train"]
    assert sorted(zip(map(tuple, train["x"]), train["y"], strict=True)) == [
        ((-0.5, 0.5), 0),
        ((0.25, 0.75), 1),
        ((0.5, -0.5), 1),
    ]


@pytest.mark.parametrize(
    ("drawn", "message"),
    [
        ("", "draw at least 2 points (there are 0)"),
        ("0.1, 0.2, 1", "draw at least 2 points (there is 1)"),
        ("0.1, 0.2, 1\n0.3, 0.4, 1", "every point is class 1: add points of another class"),
    ],
)
def test_the_form_refuses_too_few_drawn_points_in_words(
    client: TestClient, drawn: str, message: str
) -> None:
    data = FORM | {"dataset.kind": "draw", "dataset.drawn": drawn}
    page = client.post("/ui/runs", data=data, headers=HX)
    assert "HX-Redirect" not in page.headers
    assert 'id="error-dataset-drawn"' in page.text and message in html.unescape(page.text)
    assert client.get("/api/runs").json()["runs"] == []


def widget_points(page: str) -> list[list[float]]:
    raw = re.search(r'data-points="([^"]*)"', page)
    assert raw is not None
    return json.loads(html.unescape(raw.group(1)))  # type: ignore[no-any-return]


def test_draw_page_shows_the_runs_points_and_trains_on_new_ones(client: TestClient) -> None:
    run_id = make_run(client, epochs=5)
    page = client.get(f"/runs/{run_id}/draw")
    assert page.status_code == 200 and 'id="draw-train"' in page.text
    data = client.get(f"/api/runs/{run_id}/data").json()
    points = widget_points(page.text)
    assert len(points) == len(data["train"]["x"]) + len(data["test"]["x"]) == 40
    assert points[0] == [*(round(v, 3) for v in data["train"]["x"][0]), data["train"]["y"][0]]

    drawn = "-0.5, 0.5, 0\n0.5, -0.5, 1\n0.25, 0.75, 1"
    response = client.post(
        f"/ui/runs/{run_id}/draw", data={"points": drawn, "task": "classification"}, headers=HX
    )
    assert response.headers["HX-Redirect"] == f"/runs/{run_id}"
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["config"]["dataset"]["kind"] == "custom"
    assert run["status"] in ("running", "completed")  # "train on these points" trains
    now = client.get(f"/api/runs/{run_id}/data").json()
    rows = sorted(
        (tuple(x), y)
        for part in ("train", "test")
        for x, y in zip(now[part]["x"], now[part]["y"], strict=True)
    )
    assert rows == [((-0.5, 0.5), 0), ((0.25, 0.75), 1), ((0.5, -0.5), 1)]


@pytest.mark.parametrize(
    ("points", "task", "message"),
    [
        ("0.1, 0.2, 0", "classification", "Draw at least 2 points (there is 1)."),
        ("0.1, 0.2, 0\n0.3, 0.4, 0", "classification", "Every point is class 0"),
        ("0.1, 0.2, 0\n0.3, 0.4, 1", "clustering", "task: must be classification or regression"),
    ],
)
def test_draw_page_refuses_bad_points_in_words_and_changes_nothing(
    client: TestClient, points: str, task: str, message: str
) -> None:
    run_id = make_run(client)
    before = client.get(f"/api/runs/{run_id}").json()
    response = client.post(
        f"/ui/runs/{run_id}/draw", data={"points": points, "task": task}, headers=HX
    )
    assert "HX-Redirect" not in response.headers
    assert 'class="msg-error"' in response.text and message in html.unescape(response.text)
    assert client.get(f"/api/runs/{run_id}").json() == before


def test_draw_page_for_data_that_is_not_2d_and_for_an_unknown_run(client: TestClient) -> None:
    run_id = make_run(client, dataset={"kind": "sine", "n_samples": 20})
    page = client.get(f"/runs/{run_id}/draw").text
    assert widget_points(page) == [] and "has 1 input" in page
    assert 'data-task="regression"' in page
    assert client.get("/runs/nope/draw").status_code == 404


# ---------------------------------------------------------------- /descent


def test_descent_starts_at_the_articles_x0_and_offers_minus_four(client: TestClient) -> None:
    page = client.get("/descent").text
    assert re.search(r'id="descent-x0"[^>]*value="0"', page)
    assert "dy/dx = 4" in page  # the slope at x = 0
    assert 'id="descent-start-0"' in page and 'id="descent-start-m4"' in page


def test_descent_reads_its_state_from_the_url(client: TestClient) -> None:
    page = client.get("/descent", params={"lr": "0.1", "x0": "-4", "step": "3"}).text
    assert 'id="descent-step-count">3<' in page
    # x_3 = -2 + 0.8^3 * (-2)
    assert f"x = {-2 - 2 * 0.8**3:.4g} ·" in page
    assert re.search(r'id="descent-lr"[^>]*value="0.1"', page)


def test_descent_frames_rewrite_the_address_bar(client: TestClient) -> None:
    frame = client.get("/ui/descent/frame", params={"lr": "0.3", "x0": "-4", "step": "2"})
    target = urlsplit(frame.headers["HX-Replace-Url"])
    assert target.path == "/descent"
    assert parse_qs(target.query) == {"lr": ["0.3"], "x0": ["-4"], "step": ["2"]}


def descent_frame(client: TestClient, **params: Any) -> str:
    return html.unescape(client.get("/ui/descent/frame", params=params).text)


def test_descent_runs_past_forty_steps_until_it_converges(client: TestClient) -> None:
    # lr 0.05 from 0: 2 * 0.9^k < 1e-6 first at k = 138; the end button jumps there
    done = descent_frame(client, lr="0.05", x0="0", step="100000")
    assert 'id="descent-step-count">138<' in done
    assert "converged: within 1e-06 of the minimum after 138 steps" in done
    assert "load delay" not in done  # nothing left to play
    middle = descent_frame(client, lr="0.05", x0="0", step="60", play="1")
    assert 'id="descent-step-count">60<' in middle and "load delay" in middle


def test_descent_says_when_it_diverges(client: TestClient) -> None:
    frame = descent_frame(client, lr="1.05", x0="0", step="100000")
    assert "diverged: |x| passed 1,000,000 after" in frame
    assert 'data-outcome="diverged"' in frame

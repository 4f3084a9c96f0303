"""HTML pages, the new-run form and live-view fragments through TestClient(create_app(settings))."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.ui.frames import Rendered
from app.ui.views import FRAGMENTS

HX = {"HX-Request": "true"}
EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"

FORM: dict[str, Any] = {
    "name": "from the form",
    "dataset.kind": "xor",
    "dataset.noise": "0",
    "dataset.n_samples": "40",
    "dataset.test_fraction": "0.2",
    "dataset.seed": "0",
    "hidden_layers": ["4"],
    "activation": "tanh",
    "output_activation": "",
    "loss": "",
    "learning_rate": "0.3",
    "optimizer": "sgd",
    "momentum": "0.9",
    "batch_size": "",
    "epochs": "50",
    "l1": "0",
    "l2": "0",
    "use_bias": "on",
    "init": "xavier",
    "seed": "0",
    "dtype": "float32",
    "max_epochs_per_second": "",
}


def make_run(client: TestClient, **body: Any) -> str:
    payload = {"start": False, "dataset": {"kind": "xor", "n_samples": 40}, "hidden_layers": [4]}
    payload.update(body)
    response = client.post("/api/runs", json=payload)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def step(client: TestClient, run_id: str, epochs: int) -> dict[str, Any]:
    response = client.post(f"/api/runs/{run_id}/step", json={"epochs": epochs})
    assert response.status_code == 200, response.text
    return dict(response.json())


def current_frame(client: TestClient, run_id: str) -> Rendered:
    """The shared frame, rendered on the app's event loop (where the hub lives)."""
    app = client.app
    manager = app.state.manager  # type: ignore[attr-defined]
    frames = app.state.ui.frames  # type: ignore[attr-defined]

    async def render() -> Rendered:
        return frames.current(manager, run_id)

    return client.portal.call(render)  # type: ignore[union-attr]


def field_block(html: str, field: str) -> str:
    """The <label> block of a form field (where its error must appear)."""
    key = field.replace(".", "-")
    start = html.index(f'for="f-{key}"')
    return html[start : html.index("</label>", start)]


# ---------------------------------------------------------------- home and form


def test_home_has_the_runs_list_and_the_new_run_form(client: TestClient) -> None:
    html = client.get("/runs").text
    assert 'id="runs-list"' in html and 'hx-trigger="every 2s"' in html
    assert 'id="new-run"' in html and 'hx-post="/ui/runs"' in html
    for name in (
        "dataset.kind",
        "dataset.noise",
        "dataset.test_fraction",
        "dataset.n_samples",
        "hidden_layers",
        "activation",
        "output_activation",
        "loss",
        "learning_rate",
        "optimizer",
        "batch_size",
        "epochs",
        "l1",
        "l2",
        "seed",
        "dtype",
    ):
        assert f'name="{name}"' in html, name
    for preset in ("teacher", "xor", "spiral", "regression"):
        assert f'id="preset-{preset}"' in html
    assert 'id="dataset-preview"' in html and "<circle" in html  # server-rendered preview
    assert 'list="lr-options"' in html and '<option value="0.00001">' in html


def test_run_names_are_escaped_everywhere(client: TestClient) -> None:
    run_id = make_run(client, name=EVIL)
    for path in ("/runs", f"/runs/{run_id}", "/ui/runs-table", f"/compare?runs={run_id}"):
        html = client.get(path).text
        assert EVIL not in html, path
        assert ESCAPED in html, path


def test_form_post_creates_the_run_and_redirects_to_its_live_view(client: TestClient) -> None:
    response = client.post("/ui/runs", data=FORM, headers=HX)
    assert response.status_code == 200
    target = response.headers["HX-Redirect"]
    run_id = target.removeprefix("/runs/")
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["name"] == "from the form" and run["layer_sizes"] == [2, 4, 1]
    assert run["config"]["batch_size"] is None and run["config"]["learning_rate"] == 0.3
    assert client.get(target).status_code == 200


def test_form_post_without_htmx_redirects_with_303(client: TestClient) -> None:
    response = client.post("/ui/runs", data=FORM, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/runs/")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"learning_rate": "20"}, "learning_rate"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"dataset.noise": "5"}, "dataset.noise"),
        ({"epochs": "0"}, "epochs"),
        ({"hidden_layers": ["4", "0"]}, "hidden_layers"),
        ({"dataset.kind": "spiral", "dataset.n_classes": "12"}, "dataset.n_classes"),
        ({"name": "x" * 81}, "name"),
    ],
)
def test_validation_errors_appear_next_to_their_field(
    client: TestClient, changes: dict[str, Any], field: str
) -> None:
    response = client.post("/ui/runs", data=FORM | changes, headers=HX)
    assert response.status_code == 200 and "HX-Redirect" not in response.headers
    html = response.text
    error_id = f'id="error-{field.replace(".", "-")}"'
    assert error_id in html
    if field != "hidden_layers":
        assert error_id in field_block(html, field)
    assert client.get("/api/runs").json()["runs"] == []  # nothing half-made


def test_manager_refusals_appear_next_to_their_field(client: TestClient) -> None:
    # cross_entropy needs a sigmoid/softmax output: the manager refuses the pairing.
    data = FORM | {"loss": "cross_entropy", "output_activation": "linear"}
    html = client.post("/ui/runs", data=data, headers=HX).text
    assert 'id="error-loss"' in html or 'id="error-output_activation"' in html
    # Over the parameter limit.
    big = FORM | {"hidden_layers": ["1024"] * 7}
    html = client.post("/ui/runs", data=big, headers=HX).text
    assert "parameters" in html and "field-error" in html
    assert client.get("/api/runs").json()["runs"] == []


def test_the_form_keeps_what_was_typed_after_an_error(client: TestClient) -> None:
    html = client.post(
        "/ui/runs", data=FORM | {"learning_rate": "20", "name": EVIL}, headers=HX
    ).text
    assert 'value="20"' in html and ESCAPED in html and EVIL not in html


def test_presets_fill_the_form(client: TestClient) -> None:
    html = client.get("/ui/new-run?preset=teacher").text
    assert 'option value="teacher" selected' in html
    assert 'option value="sigmoid" selected' in html and 'option value="mse" selected' in html
    assert re.search(r'name="batch_size"[^>]*value=""', html)  # full batch: plain gradient descent
    spiral = client.get("/ui/new-run?preset=spiral").text
    assert spiral.count('name="hidden_layers"') == 2


def test_architecture_editor_adds_removes_and_resizes_layers(client: TestClient) -> None:
    def edit(layers: list[str], op: str) -> list[str]:
        html = client.post("/ui/new-run/arch", data={"hidden_layers": layers, "arch_op": op}).text
        return re.findall(
            r'name="hidden_layers" type="number" min="1" max="1024" value="(\d+)"', html
        )

    assert edit(["8", "8"], "add-layer") == ["8", "8", "8"]
    assert edit(["8", "8"], "remove-layer") == ["8"]
    assert edit(["8", "3"], "inc:1") == ["8", "4"]
    assert edit(["1"], "dec:0") == ["1"]
    assert edit([], "add-layer") == ["4"]


def test_dataset_preview_follows_the_fields(client: TestClient) -> None:
    xor = client.get(
        "/ui/dataset-preview", params={"dataset.kind": "xor", "dataset.n_samples": "50"}
    )
    assert xor.text.count("<circle") == 50
    sine = client.get("/ui/dataset-preview", params={"dataset.kind": "sine"}).text
    assert "<circle" in sine
    teacher = client.get("/ui/dataset-preview", params={"dataset.kind": "teacher"}).text
    assert "no 2-D picture" in teacher
    bad = client.get(
        "/ui/dataset-preview", params={"dataset.kind": "xor", "dataset.n_samples": "3"}
    )
    assert bad.status_code == 200 and "field-error" in bad.text


def test_runs_table_shows_status_epoch_losses_and_sparkline(client: TestClient) -> None:
    run_id = make_run(client, name="tabled")
    step(client, run_id, 5)
    html = client.get("/ui/runs-table").text
    row = html[html.index(f'data-run-id="{run_id}"') :]
    assert "tabled" in row and "xor" in row and "2\u20134\u20131" in row  # en dashes
    assert "status-stopped" in row and ">5<" in row
    assert re.search(r'class="spark"[^>]*><path d="M', row)
    assert f'id="cmp-{run_id}" hx-preserve="true"' in row


# ---------------------------------------------------------------- live view


LIVE_IDS = (
    "epoch",
    "status",
    "start-stop",
    "step",
    "reset",
    "delete",
    "learning-rate",
    "speed",
    "loss-chart",
    "accuracy-chart",
    "network",
    "output-heatmap",
    "output-points",
    "weights",
    "grad-norms",
    "predict-form",
    "predict-result",
    "loss-log",
    "show-test",
    "discretize",
    "weights-delta",
    "sse-sink",
)


def test_live_view_has_every_part_and_the_stream_hookup(client: TestClient) -> None:
    run_id = make_run(client, dataset={"kind": "spiral", "n_samples": 100}, hidden_layers=[8, 8])
    step(client, run_id, 3)
    html = client.get(f"/runs/{run_id}").text
    for element_id in LIVE_IDS:
        assert f'id="{element_id}"' in html, element_id
    assert f'sse-connect="/ui/runs/{run_id}/stream"' in html and 'hx-ext="sse"' in html
    assert 'sse-swap="snapshot,frame,deleted"' in html
    loss = html[html.index('id="loss-chart"') :]
    assert re.search(r'<path class="series train" d="M', loss)
    assert re.search(r'<path class="series test" d="M', loss)
    network = html[html.index('id="network"') : html.index('id="output-stack"')]
    # 2-D data: all 7 input features are drawn (x1, x2 active), then 8 + 8 + 1 neurons.
    assert network.count('<g class="neuron feature on" data-key=') == 2
    assert network.count('<g class="neuron feature off" data-key=') == 5
    assert network.count('<g class="neuron" data-key=') == 8 + 8 + 1
    assert network.count("<title>w") == 2 * 8 + 8 * 8 + 8
    assert network.count('<image href="data:image/png;base64,') == 7 + 17  # a map per node
    assert 'class="bias"' in network
    weights = html[html.index('id="weights"') :]
    assert weights.count('class="w-now"') == 3 and weights.count('class="w-delta"') == 3
    assert '<image class="map-continuous" href="data:image/png;base64,' in html
    assert "<script>" not in html.replace('<script src="', "")


def test_unknown_run_is_a_404_page(client: TestClient) -> None:
    response = client.get("/runs/nope")
    assert response.status_code == 404 and "Not found" in response.text
    assert client.get("/ui/runs/nope/stream").status_code == 404


def test_frame_fragments_of_an_8_8_spiral_stay_well_under_100_kb(client: TestClient) -> None:
    run_id = make_run(client, dataset={"kind": "spiral"}, hidden_layers=[8, 8])
    step(client, run_id, 300)
    rendered = current_frame(client, run_id)
    frame = rendered.frame_message(-1)
    assert frame is not None
    assert len(frame) < 80_000, len(frame)
    sizes = {k: len(v) for k, v in rendered.fragments.items()}
    assert len(rendered.snapshot_message()) < 100_000, sizes
    # Every fragment fills a fixed container by innerHTML: the DOM cannot grow frame after frame.
    targets = re.findall(
        r'<div id="([\w-]+)" hx-swap-oob="([^"]+)">', rendered.snapshot_message().decode()
    )
    assert sorted(t for t, _ in targets) == sorted(FRAGMENTS.values())
    assert {how for _, how in targets} == {"innerHTML"}
    page = client.get(f"/runs/{run_id}").text
    for target in FRAGMENTS.values():
        assert page.count(f'id="{target}"') == 1, target


def test_frames_are_rendered_once_per_version_and_only_changes_are_sent(client: TestClient) -> None:
    run_id = make_run(client)
    first = current_frame(client, run_id)
    assert current_frame(client, run_id) is first  # cached for the same hub version
    step(client, run_id, 2)
    second = current_frame(client, run_id)
    assert second.version > first.version
    changed = second.frame_message(first.version)
    assert changed is not None
    text = changed.decode()
    assert text.startswith("event: frame\n")
    assert 'id="stats"' in text and 'id="loss-chart"' in text
    assert 'id="output-points"' not in text  # static: only in snapshots
    assert second.frame_message(second.version) is None  # nothing new for an up-to-date viewer
    assert '<span class="stat-value mono" id="epoch" data-epoch="2">2</span>' in text


def test_weight_views_are_reused_until_new_weights_arrive(client: TestClient) -> None:
    run_id = make_run(client)
    step(client, run_id, 2)
    first = current_frame(client, run_id)
    renamed = client.patch(f"/api/runs/{run_id}", json={"name": "renamed"})
    assert renamed.status_code == 200
    second = current_frame(client, run_id)
    assert second.version > first.version
    for name in ("network", "output", "weights"):
        assert second.fragments[name] is first.fragments[name], name
    message = second.frame_message(first.version) or b""
    assert b'id="network"' not in message


def test_a_big_network_still_renders_a_small_frame(client: TestClient) -> None:
    run_id = make_run(
        client, dataset={"kind": "spiral", "n_samples": 100}, hidden_layers=[256, 256]
    )
    step(client, run_id, 1)
    rendered = current_frame(client, run_id)
    sizes = {k: len(v) for k, v in rendered.fragments.items()}
    assert len(rendered.snapshot_message()) < 100_000, sizes
    network = rendered.fragments["network"]
    assert network.count('<g class="neuron" data-key=') == 10 + 10 + 1  # 10 shown per layer
    assert "+ 246 more" in network
    assert "block-averaged" in rendered.fragments["weights"]  # 256x256 pooled to <= 96 cells


def test_regression_views_curve_and_predicted_vs_true(client: TestClient) -> None:
    sine = make_run(client, dataset={"kind": "sine", "n_samples": 60})
    step(client, sine, 2)
    html = client.get(f"/runs/{sine}").text
    assert '<path class="prediction" d="M' in html and 'data-kind="curve"' in html
    teacher = make_run(client, dataset={"kind": "teacher", "n_samples": 60}, hidden_layers=[5])
    step(client, teacher, 2)
    html = client.get(f"/runs/{teacher}").text
    assert (
        'data-kind="scatter"' in html and 'class="pt pred"' in html and 'class="diagonal"' in html
    )
    assert "Regression: no accuracy" in html


@pytest.mark.parametrize(
    "body",
    [
        {"hidden_layers": []},
        {"use_bias": False},
        {"activation": "relu", "dataset": {"kind": "moons", "n_samples": 40}},
        {"dataset": {"kind": "plane", "n_samples": 40}, "activation": "linear"},
    ],
)
def test_unusual_networks_render(client: TestClient, body: dict[str, Any]) -> None:
    run_id = make_run(client, **body)
    step(client, run_id, 2)
    html = client.get(f"/runs/{run_id}").text
    assert 'id="network"' in html and "<title>w" in html
    assert ('class="bias"' in html) == body.get("use_bias", True)
    rendered = current_frame(client, run_id)
    sizes = {k: len(v) for k, v in rendered.fragments.items()}
    assert len(rendered.snapshot_message()) < 100_000, sizes


def test_high_dimensional_classification_shows_a_confusion_matrix(client: TestClient) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3)).round(3).tolist()
    y = [int(row[0] > 0) + int(row[1] > 0) for row in x]  # 3 classes
    dataset = {"kind": "custom", "task": "classification", "x": x, "y": y, "test_fraction": 0.3}
    run_id = make_run(client, dataset=dataset)
    step(client, run_id, 2)
    html = client.get(f"/runs/{run_id}").text
    assert 'data-kind="scatter"' in html and '<table class="confusion"' in html
    table = html[html.index('<table class="confusion"') : html.index("</table>")]
    counts = [int(c) for c in re.findall(r"<td(?: class=\"diag\")?>(\d+)</td>", table)]
    assert len(counts) == 9 and sum(counts) == 9  # every test sample counted once


def test_multiclass_output_uses_class_colours(client: TestClient) -> None:
    run_id = make_run(client, dataset={"kind": "gauss", "n_classes": 3, "n_samples": 60})
    step(client, run_id, 2)
    html = client.get(f"/runs/{run_id}").text
    assert "class 2" in html and 'class="swatch class-2"' in html


# ---------------------------------------------------------------- controls


def test_controls_step_start_stop_reset_patch_and_delete(client: TestClient) -> None:
    run_id = make_run(client, epochs=100_000, max_epochs_per_second=50)
    assert client.post(f"/ui/runs/{run_id}/step", headers=HX).status_code == 200
    assert client.get(f"/api/runs/{run_id}").json()["epoch"] == 1
    client.post(f"/ui/runs/{run_id}/toggle", headers=HX)
    assert client.get(f"/api/runs/{run_id}").json()["status"] == "running"
    refused = client.post(f"/ui/runs/{run_id}/step", headers=HX)
    assert 'class="msg-error"' in refused.text  # 409 from the manager, shown by the controls
    client.post(f"/ui/runs/{run_id}/toggle", headers=HX)
    assert client.get(f"/api/runs/{run_id}").json()["status"] == "stopped"
    ok = client.post(
        f"/ui/runs/{run_id}/patch", data={"learning_rate": "0.1", "max_epochs_per_second": ""}
    )
    assert "learning rate 0.1" in ok.text and "full speed" in ok.text
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["config"]["learning_rate"] == 0.1 and run["config"]["max_epochs_per_second"] is None
    bad = client.post(f"/ui/runs/{run_id}/patch", data={"learning_rate": "11"})
    assert 'class="msg-error"' in bad.text
    assert "Learning rate: must be more than 0 and at most 10" in bad.text
    client.post(f"/ui/runs/{run_id}/reset", headers=HX)
    assert client.get(f"/api/runs/{run_id}").json()["epoch"] == 0
    deleted = client.post(f"/ui/runs/{run_id}/delete", headers=HX)
    assert deleted.headers["HX-Redirect"] == "/runs"
    assert client.get(f"/api/runs/{run_id}").status_code == 404


# ---------------------------------------------------------------- compare and descent


def test_compare_overlays_the_chosen_runs(client: TestClient) -> None:
    a = make_run(client, name="run a")
    b = make_run(client, name="run b")
    step(client, a, 3)
    step(client, b, 5)
    html = client.get(f"/compare?runs={a},{b}").text
    chart = html[html.index('id="compare-chart"') : html.index('id="compare-legend"')]
    # train (solid) + test (dashed) per run, in the linear and the log chart
    assert chart.count('class="series run') == 2 * 2 * 2
    assert chart.count('class="series run dashed"') == 2 * 2
    legend = html[html.index('id="compare-legend"') :]
    assert "run a" in legend and "run b" in legend
    repeated = client.get(f"/compare?runs={a}&runs={b}&runs=missing").text
    assert "Unknown run: missing" in repeated
    assert client.get("/compare").status_code == 200
    # the chart polls its own fragment, so running runs stay live
    assert f'hx-get="/ui/compare-chart?runs={a}%2C{b}"' in html
    fragment = client.get("/ui/compare-chart", params={"runs": f"{a},{b}"}).text
    assert fragment.count('class="series run') == 8 and "<html" not in fragment


@pytest.mark.parametrize(
    ("lr", "verdict"),
    [("0.05", "descending"), ("0.5", "converged"), ("0.95", "overshooting"), ("1.05", "diverging")],
)
def test_descent_frames_show_the_learning_rate_regimes(
    client: TestClient, lr: str, verdict: str
) -> None:
    html = client.get(
        "/ui/descent/frame", params={"lr": lr, "x0": "2", "step": "6", "play": "1"}
    ).text
    assert verdict in html
    assert 'class="descent-tangent" d="M' in html and 'class="descent-point"' in html
    # playing: the next frame is requested by htmx, until the descent has converged
    assert ('hx-trigger="load delay:' in html) == (verdict != "converged")


def test_descent_page_renders_and_bad_input_is_clamped(client: TestClient) -> None:
    html = client.get("/descent").text
    for rate in ("0.05", "0.5", "0.95", "1.05"):
        assert f'id="descent-lr-{rate.replace(".", "_")}"' in html
    assert 'id="descent-svg"' in html
    odd = client.get("/ui/descent/frame", params={"lr": "nan", "x0": "1e9", "step": "-3"})
    assert odd.status_code == 200 and 'id="descent-step-count">0<' in odd.text


def test_the_predict_box_takes_the_raw_inputs_of_a_run_with_features(client: TestClient) -> None:
    run_id = make_run(client, features=["x1", "x2", "x1_sq", "x1_x2"])
    page = client.get(f"/runs/{run_id}").text
    assert 'data-n-inputs="2"' in page
    assert 'id="predict-x1"' in page and 'id="predict-x2"' not in page


def test_a_2d_classification_run_shows_its_confusion_matrix(client: TestClient) -> None:
    run_id = make_run(client, dataset={"kind": "spiral", "n_samples": 100, "n_classes": 3})
    step(client, run_id, 20)
    rendered = current_frame(client, run_id)
    html = rendered.fragments["confusion"]
    assert "Confusion matrix" in html and "test set" in html
    counts = [
        [int(c) for c in re.findall(r"<td[^>]*>(\d+)</td>", row)]
        for row in re.findall(r"<tr><th scope=\"row\">\d+</th>(.*?)</tr>", html)
    ]
    assert len(counts) == 3 and all(len(row) == 3 for row in counts)
    run = client.get(f"/api/runs/{run_id}").json()
    test_size = len(client.get(f"/api/runs/{run_id}/data").json()["test"]["x"])
    assert sum(map(sum, counts)) == test_size
    correct = sum(counts[i][i] for i in range(3))
    assert correct / test_size == pytest.approx(run["test_accuracy"], abs=1e-6)
    # Regression runs have none.
    regression = make_run(client, dataset={"kind": "plane", "n_samples": 40})
    assert current_frame(client, regression).fragments["confusion"] == ""

"""Editing on the diagram: ± controls, input-feature nodes and their maps, exact titles.

Pure functions and the template, without a server (the routes are in test_edit_routes.py).
The maps are checked against an independent NumPy reference written here.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from jinja2 import Environment, FileSystemLoader

from app.ui import diagram
from app.ui.maps import Layer

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
ALL_FEATURES = ["x1", "x2", "x1_sq", "x2_sq", "x1_x2", "sin_x1", "sin_x2"]


def render(d: diagram.Diagram) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
    return env.get_template("partials/live_network.html").render(diagram=d)


def random_layers(sizes: list[int], seed: int = 0) -> list[Layer]:
    rng = np.random.default_rng(seed)
    return [
        Layer(rng.normal(size=(n_out, n_in)), rng.normal(size=n_out))
        for n_in, n_out in itertools.pairwise(sizes)
    ]


def reference_grid(bound: float, res: int) -> np.ndarray:
    """Pixel centres, rows top (x2 = +bound) to bottom, columns left (x1 = -bound) to right."""
    step = 2 * bound / res
    xs = -bound + step / 2 + step * np.arange(res)
    ys = bound - step / 2 - step * np.arange(res)
    return np.array([[x, y] for y in ys for x in xs])


def reference_features(grid: np.ndarray) -> np.ndarray:
    x1, x2 = grid[:, 0], grid[:, 1]
    return np.column_stack([x1, x2, x1**2, x2**2, x1 * x2, np.sin(np.pi * x1), np.sin(np.pi * x2)])


# ---------------------------------------------------------------- ± controls


def test_plus_and_minus_of_each_hidden_layer_ask_for_the_right_shape() -> None:
    d = diagram.network_diagram(
        [2, 8, 8, 1], random_layers([2, 8, 8, 1]), None, "tanh", "sigmoid", features=["x1", "x2"]
    )
    assert [(h.layer, h.plus, h.minus) for h in d.heads] == [
        (0, "", ""),
        (1, "9,8", "7,8"),
        (2, "8,9", "8,7"),
        (0, "", ""),
    ]
    assert (d.add_layer, d.remove_layer, d.hidden_text) == ("8,8,8", "8", "2 hidden layers")
    html = render(d)
    plus_2 = re.search(r'<button[^>]*data-layers="([\d,]*)"[^>]*One more neuron in layer 2"', html)
    minus_1 = re.search(
        r'<button[^>]*data-layers="([\d,]*)"[^>]*One neuron fewer in layer 1"', html
    )
    add = re.search(r'<button[^>]*data-layers="([\d,]*)"[^>]*Add a hidden layer"', html)
    assert plus_2 and plus_2.group(1) == "8,9"
    assert minus_1 and minus_1.group(1) == "7,8"
    assert add and add.group(1) == "8,8,8"
    assert html.count('class="net-btn small"') == 4  # + and - over each of the 2 hidden layers


def test_without_hidden_layers_only_adding_one_is_offered() -> None:
    d = diagram.network_diagram([2, 1], random_layers([2, 1]), None, "tanh", "sigmoid")
    assert d.add_layer == "4" and d.remove_layer is None and d.hidden_text == "0 hidden layers"
    html = render(d)
    assert re.search(r'data-layers=""[^>]*Remove the last hidden layer"[^>]*disabled', html)
    assert 'class="net-btn small"' not in html


def test_ten_layers_are_drawn_dense_inside_the_width() -> None:
    sizes = [2, *([4] * 10), 1]
    d = diagram.network_diagram(sizes, random_layers(sizes), None, "tanh", "sigmoid")
    assert d.dense and len(d.heads) == 12
    assert all(n.x - d.size / 2 > 0 and n.x + d.size / 2 < d.width for n in d.neurons)
    assert 16 <= d.size < diagram.NEURON
    assert "<text" not in render(d)  # labels are HTML: they keep their size when the SVG shrinks


# ---------------------------------------------------------------- input features


def test_every_feature_is_an_input_node_and_only_the_active_ones_are_linked() -> None:
    features = ["x1", "x2", "x1_x2"]
    sizes = [3, 4, 1]
    layers = random_layers(sizes)
    d = diagram.network_diagram(sizes, layers, None, "tanh", "sigmoid", features=features)
    inputs = [n for n in d.neurons if n.feature]
    assert [n.feature for n in inputs] == ALL_FEATURES
    assert [n.active for n in inputs] == [True, True, False, False, True, False, False]
    toggles = {n.feature: n.toggle for n in inputs}
    assert toggles["x1_sq"] == "x1,x2,x1_sq,x1_x2"  # added in the Playground's order
    assert toggles["x1"] == "x2,x1_x2"
    assert d.heads[0].count == "3" and d.heads[0].unit == "features"
    # Links leave the active nodes only: W1's column 2 (x1·x2) starts at the fifth node.
    first = [link for link in d.links if link.key.startswith("1.")]
    assert len(first) == 3 * 4
    link = next(link for link in first if link.key == "1.0.2")
    y_start = float(link.d[1:].split("C")[0].split()[1])
    assert y_start == pytest.approx(inputs[4].y, abs=0.5)
    html = render(d)
    assert html.count('aria-pressed="true"') == 3 and html.count('aria-pressed="false"') == 4
    assert 'data-features="x1,x2,x1_sq,x1_x2"' in html
    assert html.count('class="net-name off"') == 4


def test_the_last_active_feature_asks_for_no_features() -> None:
    d = diagram.network_diagram(
        [1, 2, 1], random_layers([1, 2, 1]), None, "tanh", "sigmoid", features=["x2"]
    )
    x2 = next(n for n in d.neurons if n.feature == "x2")
    assert x2.active and x2.toggle == ""  # the server refuses it with a plain message


def test_feature_maps_are_each_features_value_over_the_plane() -> None:
    bound = 1.5
    maps = diagram.plane_maps([], bound, "tanh", "sigmoid", None)
    assert len(maps) == 1
    res = diagram.MAP_RES
    want = reference_features(reference_grid(bound, res))
    want = want / np.abs(want).max(axis=0)
    np.testing.assert_allclose(maps[0], want, atol=1e-12)
    # x1 grows to the right, x2 upwards, x1² is symmetric: the orientation is the plot's.
    x1 = maps[0][:, 0].reshape(res, res)
    x2 = maps[0][:, 1].reshape(res, res)
    assert x1[0, -1] > 0 > x1[0, 0] and x2[0, 0] > 0 > x2[-1, 0]


@pytest.mark.parametrize("features", [["x1", "x1_sq", "sin_x2"], None])
def test_neuron_maps_evaluate_the_network_on_the_features_of_the_grid(
    features: list[str] | None,
) -> None:
    n_in = len(features) if features else 2
    sizes = [n_in, 5, 4, 1]
    layers = random_layers(sizes, seed=3)
    bound = 2.0
    maps = diagram.plane_maps(layers, bound, "tanh", "sigmoid", features)
    grid = reference_grid(bound, diagram.MAP_RES)
    x = reference_features(grid)[:, [ALL_FEATURES.index(f) for f in features]] if features else grid
    a1 = np.tanh(x @ layers[0].weights.T + layers[0].biases)
    a2 = np.tanh(a1 @ layers[1].weights.T + layers[1].biases)
    out = 1 / (1 + np.exp(-(a2 @ layers[2].weights.T + layers[2].biases)))
    assert len(maps) == 4
    np.testing.assert_allclose(maps[1], a1, atol=1e-12)
    np.testing.assert_allclose(maps[2], a2, atol=1e-12)
    np.testing.assert_allclose(maps[3], 2 * out - 1, atol=1e-12)


# ---------------------------------------------------------------- exact values


def test_titles_show_exact_values() -> None:
    w = np.array([[-0.123456789, 2.0 / 3.0]])
    layers = [Layer(w, np.array([1e-7]))]
    d = diagram.network_diagram([2, 1], layers, None, "tanh", "sigmoid", features=["x1", "x2"])
    titles = [link.title for link in d.links]
    assert titles[0] == "w = -0.123456789"
    assert titles[1] == f"w = {2.0 / 3.0!r}"  # 0.6666666666666666, not 0.667
    out = d.neurons[-1]
    assert out.bias_title.startswith("b = 1e-07") and out.bias_key == "1.0"
    html = render(d)
    assert "<title>w = -0.123456789</title>" in html
    assert 'data-w="1.0.1"' in html and 'data-b="1.0"' in html

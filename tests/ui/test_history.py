# ruff: noqa: RUF001 -- the page writes a real times sign
"""The weight history page (/runs/{id}/history), its frame fragment and the histograms' math."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.ui import charts, histograms, history

RUN: dict[str, Any] = {
    "start": False,
    "dataset": {"kind": "xor", "n_samples": 60},
    "hidden_layers": [3],
    "activation": "tanh",
    "learning_rate": 0.5,
    "batch_size": 10,
    "epochs": 100,
}


def _trained_run(client: TestClient, epochs: int = 30) -> str:
    response = client.post("/api/runs", json=RUN)
    assert response.status_code == 201, response.text
    run_id = str(response.json()["id"])
    stepped = client.post(f"/api/runs/{run_id}/step", json={"epochs": epochs})
    assert stepped.status_code == 200, stepped.text
    return run_id


def _link_weights(html: str) -> list[float]:
    """The exact weights the network slot's links carry in their titles, in drawing order."""
    start = html.index('data-slot="history-network"')
    block = html[start : html.index('data-slot="history-output"')]
    return [float(v) for v in re.findall(r"<title>w = ([^<]+)</title>", block)]


def _snapshot_weights(client: TestClient, run_id: str, epoch: int) -> tuple[int, list[float]]:
    body = client.get(f"/api/runs/{run_id}/weights", params={"epoch": epoch}).json()
    # the diagram draws layer by layer, each neuron's incoming links in input order
    flat = [w for layer in body["layers"] for row in layer["weights"] for w in row]
    return int(body["epoch"]), flat


def test_frame_at_a_kept_epoch_shows_that_snapshots_weights(client: TestClient) -> None:
    run_id = _trained_run(client)
    kept = client.get(f"/api/runs/{run_id}/snapshots").json()["epochs"]
    assert 0 in kept and 7 in kept and 30 in kept
    shown = {}
    for epoch in (0, 7, 30):
        response = client.get(f"/ui/runs/{run_id}/history", params={"epoch": epoch})
        assert response.status_code == 200
        assert f'data-slot="history-meta" data-epoch="{epoch}"' in response.text
        at, expected = _snapshot_weights(client, run_id, epoch)
        assert at == epoch
        assert _link_weights(response.text) == expected  # exact, every one of the 9 weights
        shown[epoch] = expected
    assert shown[0] != shown[7] != shown[30]  # the snapshots differ, so the check can fail


def test_a_non_kept_epoch_shows_the_nearest_kept_at_or_before_it(client: TestClient) -> None:
    run_id = _trained_run(client, epochs=30)
    kept = client.get(f"/api/runs/{run_id}/snapshots").json()["epochs"]
    assert 25 not in kept
    expected_epoch = max(e for e in kept if e <= 25)
    response = client.get(f"/ui/runs/{run_id}/history", params={"epoch": 25})
    assert f'data-epoch="{expected_epoch}"' in response.text
    assert "the kept epoch at or before 25" in response.text
    assert _link_weights(response.text) == _snapshot_weights(client, run_id, expected_epoch)[1]
    # beyond the last kept epoch: the last one
    late = client.get(f"/ui/runs/{run_id}/history", params={"epoch": 10**9})
    assert f'data-epoch="{kept[-1]}"' in late.text


def test_page_has_scrubber_over_kept_epochs_live_link_and_histograms(client: TestClient) -> None:
    run_id = _trained_run(client)
    kept = client.get(f"/api/runs/{run_id}/snapshots").json()["epochs"]
    page = client.get(f"/runs/{run_id}/history")
    assert page.status_code == 200
    html = page.text
    assert f'data-epochs="{",".join(str(e) for e in kept)}"' in html
    assert f'max="{len(kept) - 1}"' in html and f'value="{len(kept) - 1}"' in html
    assert re.search(rf'id="live-again" href="/runs/{run_id}"', html)
    assert 'id="history-play"' in html and "/static/history.js" in html
    # one stack per layer, one ridge per kept epoch (fewer than 40 here), on shared bins
    assert html.count('class="hist-stack"') == 2
    assert html.count('class="ridge"') == 2 * len(kept)
    # opened at an epoch: the scrubber starts there
    at = client.get(f"/runs/{run_id}/history", params={"epoch": 7}).text
    assert f'value="{kept.index(7)}"' in at
    assert (
        _link_weights(
            at.replace('id="history-network"', 'data-slot="history-network"').replace(
                'id="history-output"', 'data-slot="history-output"'
            )
        )
        == _snapshot_weights(client, run_id, 7)[1]
    )


def test_bad_epoch_and_unknown_run_are_refused_in_words(client: TestClient) -> None:
    run_id = _trained_run(client, epochs=2)
    for bad, words in (("-1", "epoch must be 0 or more"), ("x", "epoch must be a whole number")):
        for path in (f"/ui/runs/{run_id}/history", f"/runs/{run_id}/history"):
            response = client.get(path, params={"epoch": bad})
            assert response.status_code == 422
            assert words in response.text
    assert client.get("/runs/nope/history").status_code == 404
    assert client.get("/ui/runs/nope/history").status_code == 404


def test_run_without_snapshots_says_so(client: TestClient) -> None:
    created = client.post("/api/runs", json=RUN).json()
    assert client.get(f"/api/runs/{created['id']}/snapshots").json()["epochs"] == []
    page = client.get(f"/runs/{created['id']}/history")
    assert page.status_code == 200
    assert "No weights are kept for this run yet" in page.text
    assert 'id="history-range"' not in page.text
    fragment = client.get(f"/ui/runs/{created['id']}/history", params={"epoch": 0})
    assert fragment.status_code == 404 and "no kept weights yet" in fragment.text


def test_loss_marker_sits_at_the_epoch_on_the_charts_axis() -> None:
    x = np.arange(1, 101)
    cols = {"epoch": x, "train_loss": 1.0 / x, "test_loss": np.full(x.size, np.nan)}
    chart = history.loss_chart(cols)
    assert chart.x_domain == (1.0, 100.0)
    marker = history.loss_marker(chart, 100)
    assert marker.x == pytest.approx(chart.right)
    mid = history.loss_marker(chart, 50)
    expected = chart.left + (50 - 1) / 99 * (chart.right - chart.left)
    assert mid.x == pytest.approx(expected, abs=0.05)
    assert history.loss_marker(chart, 0).x == chart.left  # epoch 0 is before the first metric
    assert history.loss_marker(charts.line_chart([], []), 3).shown is False


def test_kept_at_or_before_and_epoch_parsing() -> None:
    kept = [0, 1, 2, 10, 30]
    assert [history.kept_at_or_before(kept, e) for e in (0, 2, 9, 10, 29, 31)] == [
        0,
        2,
        2,
        10,
        10,
        30,
    ]
    assert history.kept_at_or_before([5, 6], 4) is None
    assert history.parse_epoch(None) is None and history.parse_epoch("12") == 12
    for bad in ("-3", "1.5", "ten"):
        with pytest.raises(ValueError, match="epoch"):
            history.parse_epoch(bad)


# ---------------------------------------------------------------- histogram math


def test_shared_bins_and_counts_match_numpy_histogram() -> None:
    rng = np.random.default_rng(3)
    arrays = [rng.normal(0, s, size=(8, 5)) for s in (0.1, 0.5, 2.0)]
    arrays[1][0, 0] = np.nan  # a non-finite weight is left out
    edges = histograms.shared_edges(arrays, 30)
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays])
    lo, hi = finite.min(), finite.max()
    np.testing.assert_array_equal(edges, np.histogram(finite, bins=30, range=(lo, hi))[1])
    counts = histograms.layer_counts(arrays, edges)
    assert counts.shape == (3, 30)
    for a, row in zip(arrays, counts, strict=True):
        want = np.histogram(a[np.isfinite(a)], bins=30, range=(lo, hi))[0]
        np.testing.assert_array_equal(row, want)
    assert counts.sum(axis=1).tolist() == [40, 39, 40]


def test_constant_weights_get_numpys_unit_wide_range() -> None:
    arrays = [np.full((2, 2), 0.25), np.full((2, 2), 0.25)]
    edges = histograms.shared_edges(arrays, 10)
    np.testing.assert_array_equal(edges, np.histogram(arrays[0], bins=10)[1])
    assert histograms.layer_counts(arrays, edges).sum() == 8
    np.testing.assert_array_equal(
        histograms.shared_edges([np.array([np.inf])], 4), np.linspace(-1, 1, 5)
    )


def test_subsample_keeps_first_last_and_at_most_the_limit() -> None:
    epochs = list(range(0, 1000, 7))
    picked = histograms.subsample_epochs(epochs, 40)
    assert len(picked) == 40 and picked[0] == 0 and picked[-1] == epochs[-1]
    assert picked == sorted(set(picked)) and set(picked) <= set(epochs)
    assert histograms.subsample_epochs([0, 1, 2], 40) == [0, 1, 2]


def test_stack_draws_a_ridge_per_epoch_with_heights_from_the_counts() -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.normal(0, 0.2 + k, size=(16, 16)) for k in range(4)]
    stack = histograms.stacked_histogram(2, [0, 5, 10, 20], arrays, n_bins=12)
    assert stack.layer == 2 and stack.shape == "16×16"
    assert [r.epoch for r in stack.ridges] == [0, 5, 10, 20]
    assert stack.ridges[0].opacity == 0.25 and stack.ridges[-1].opacity == 1.0
    counts = histograms.layer_counts(arrays, histograms.shared_edges(arrays, 12))
    peak = counts.max()
    for ridge, row in zip(stack.ridges, counts, strict=True):
        ys = [float(v) for v in re.findall(r"L[\d.]+ ([\d.]+)", ridge.d)][:-1]  # bin tops
        base = ridge.label_y
        heights = np.array([base - y for y in ys])
        ridge_h = (stack.height - 22 - 6) * 0.5
        np.testing.assert_allclose(heights, row / peak * ridge_h, atol=0.06)
    # baselines step down with time: the newest in front at the bottom
    assert [r.label_y for r in stack.ridges] == sorted(r.label_y for r in stack.ridges)


def test_bins_grow_with_the_layer_within_limits() -> None:
    assert histograms.bins_for(4) == histograms.MIN_BINS
    assert histograms.bins_for(48) == 14
    assert histograms.bins_for(100_000) == histograms.N_BINS
    arrays = [np.linspace(-1, 1, 48).reshape(8, 6)]
    stack = histograms.stacked_histogram(1, [0], arrays)
    assert stack.ridges[0].d.count("L") == 14 + 1  # one point per bin, then back to the baseline


def test_the_live_views_history_card_serves_the_last_kept_epoch(client: TestClient) -> None:
    body = {"start": False, "dataset": {"kind": "xor", "n_samples": 40}, "hidden_layers": [3]}
    run = client.post("/api/runs", json=body).json()
    empty = client.get(f"/ui/runs/{run['id']}/history-panel")
    assert empty.status_code == 200 and "No weights are kept" in empty.text
    client.post(f"/api/runs/{run['id']}/step", json={"epochs": 25})
    kept = client.get(f"/api/runs/{run['id']}/snapshots").json()["epochs"]
    panel = client.get(f"/ui/runs/{run['id']}/history-panel").text
    assert f'max="{len(kept) - 1}"' in panel and f'value="{len(kept) - 1}"' in panel
    assert 'id="history-live"' in panel
    assert 'id="live-history"' in client.get(f"/runs/{run['id']}").text
    assert client.get("/ui/runs/nope/history-panel").status_code == 404

"""Pure view math (app.ui.render, app.ui.charts): checked against closed forms and decoders."""

from __future__ import annotations

import base64
import math
import struct
import zlib

import numpy as np
import pytest

from app.ui import charts, render

# ---------------------------------------------------------------- scales


def test_linear_scale_maps_domain_ends_and_inverts_direction() -> None:
    out = render.linear_scale([0.0, 5.0, 10.0], (0, 10), (200, 0))
    assert out.tolist() == [200.0, 100.0, 0.0]


def test_linear_scale_none_is_nan_and_flat_domain_is_centred() -> None:
    out = render.linear_scale([None, 1.0], (0, 2), (0, 100))
    assert math.isnan(out[0]) and out[1] == 50.0
    flat = render.linear_scale([3.0, 3.0], (3, 3), (0, 100))
    assert flat.tolist() == [50.0, 50.0]


def test_log_scale_decades_are_evenly_spaced() -> None:
    out = render.log_scale([1e-3, 1e-2, 1e-1, 1.0], (1e-3, 1.0), (0, 300))
    np.testing.assert_allclose(out, [0, 100, 200, 300])


def test_log_scale_turns_zero_negative_none_and_nan_into_gaps() -> None:
    out = render.log_scale([0.0, -1.0, None, float("nan"), 10.0], (1, 100), (0, 2))
    assert np.isnan(out[:4]).all()
    assert out[4] == pytest.approx(1.0)


def test_log_scale_survives_a_zero_domain() -> None:
    out = render.log_scale([1.0], (0.0, 10.0), (0, 1))
    assert np.isfinite(out).all()


def test_nice_ticks_are_round_and_inside_the_range() -> None:
    assert render.nice_ticks(0, 1, 5) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert render.nice_ticks(0.13, 0.87, 4) == [0.2, 0.4, 0.6, 0.8]
    ticks = render.nice_ticks(-1.5, 1.5, 4)
    assert ticks[0] >= -1.5 and ticks[-1] <= 1.5 and 0.0 in ticks
    assert render.nice_ticks(1, 0) == [] and render.nice_ticks(2, 2) == [2]


def test_nice_domain_widens_outwards_to_ticks() -> None:
    assert render.nice_domain(0.03, 0.71, 4) == pytest.approx((0.0, 0.8))
    lo, hi = render.nice_domain(5.0, 5.0)
    assert lo < 5.0 < hi


def test_log_domain_and_ticks_are_powers_of_ten() -> None:
    assert render.log_domain(0.003, 0.7) == (1e-3, 1.0)
    assert render.log_ticks(1e-3, 1.0) == pytest.approx([1e-3, 1e-2, 1e-1, 1.0])
    assert len(render.log_ticks(1e-30, 1.0, max_ticks=7)) <= 7
    assert render.log_ticks(0, 1) == []


def test_format_tick_is_short() -> None:
    assert [render.format_tick(v) for v in (0, 0.5, 200, 15_000, 2_500_000)] == [
        "0",
        "0.5",
        "200",
        "15k",
        "2.5M",
    ]
    assert render.format_tick(5000) == "5k" and render.format_tick(1500) == "1.5k"
    assert render.format_tick(1e-3) == "1e-3" and render.format_tick(2.5e-5) == "2.5e-5"


def test_format_number_is_short_and_total() -> None:
    assert render.format_number(None) == "—"
    assert render.format_number(float("nan")) == "—"
    assert render.format_number(float("inf")) == "∞"
    assert render.format_number(0.123456) == "0.123"
    assert render.format_number(1.5e-7) == "1.50e-7"
    assert render.format_number(0) == "0"


# ---------------------------------------------------------------- colour


def test_diverging_scale_endpoints_and_midpoint() -> None:
    rgb = render.diverging_rgb(np.array([-1.0, 0.0, 1.0]))
    assert tuple(rgb[0]) == render.NEGATIVE_RGB == (0xF5, 0x93, 0x22)
    assert tuple(rgb[1]) == render.ZERO_RGB == (0xE8, 0xEA, 0xEB)
    assert tuple(rgb[2]) == render.POSITIVE_RGB == (0x08, 0x77, 0xBD)
    assert render.diverging_hex(-1.0) == "#f59322" and render.diverging_hex(1.0) == "#0877bd"


def test_diverging_scale_saturates_scales_and_greys_out_nan() -> None:
    rgb = render.diverging_rgb(np.array([-50.0, 50.0, np.nan, 2.0]), vmax=2.0)
    assert tuple(rgb[0]) == render.NEGATIVE_RGB and tuple(rgb[1]) == render.POSITIVE_RGB
    assert tuple(rgb[2]) == render.ZERO_RGB and tuple(rgb[3]) == render.POSITIVE_RGB
    assert rgb.dtype == np.uint8 and rgb.shape == (4, 3)


def test_diverging_scale_halfway_is_the_mean_of_grey_and_the_end() -> None:
    half = render.diverging_rgb(np.array([0.5]))[0].astype(float)
    expected = (np.array(render.ZERO_RGB) + np.array(render.POSITIVE_RGB)) / 2
    assert np.abs(half - expected).max() <= 0.5


def test_quantised_scale_has_few_levels() -> None:
    rgb = render.diverging_rgb(np.linspace(-1, 1, 1000), steps=15)
    assert len({tuple(c) for c in rgb}) == 31


def test_categorical_colours_fade_with_confidence() -> None:
    full = render.categorical_rgb(np.array([0, 1]))
    assert [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in full] == ["#f59322", "#0877bd"]
    faded = render.categorical_rgb(np.array([1]), np.array([0.0]))
    assert tuple(faded[0]) == render.ZERO_RGB


# ---------------------------------------------------------------- downsampling


def test_downsampling_keeps_min_max_and_at_most_2n_points() -> None:
    rng = np.random.default_rng(0)
    n = 100_000
    x = np.arange(1, n + 1, dtype=float)
    y = np.exp(-x / 20_000) + 0.01 * rng.standard_normal(n)
    y[54_321] = 7.0  # a divergence spike
    y[77_777] = -3.0
    dx, dy = render.downsample_minmax(x, y, 500)
    assert len(dx) <= 1002 and len(dx) == len(dy)
    assert dy.max() == 7.0 and dy.min() == -3.0
    assert dx[np.argmax(dy)] == 54_322.0
    assert np.all(np.diff(dx) > 0)  # still in x order
    assert dx[0] == 1.0 and dx[-1] == n  # the curve spans the whole history


def test_downsampling_short_series_comes_back_unchanged() -> None:
    dx, dy = render.downsample_minmax([1, 2, 3], [3.0, None, 1.0], 10)
    assert dx.tolist() == [1.0, 2.0, 3.0]
    assert dy[0] == 3.0 and math.isnan(dy[1])


def test_downsampling_skips_gaps_and_empty_buckets() -> None:
    y = np.full(10_000, np.nan)
    y[:100] = 1.0
    y[5000] = 2.0
    dx, dy = render.downsample_minmax(np.arange(10_000), y, 50)
    assert np.isfinite(dy).all()
    assert 2.0 in dy.tolist()
    assert len(dx) <= 102


def test_mean_downsampling_averages_buckets() -> None:
    x = np.arange(1000, dtype=float)
    y = np.tile([1.0, 3.0], 500)
    mx, my = render.downsample_mean(x, y, 10)
    assert len(mx) == 10
    np.testing.assert_allclose(my, 2.0)
    np.testing.assert_allclose(mx, np.arange(10) * 100 + 49.5)
    # geometric: the mean of 10^-1 and 10^-3 is 10^-2; zeros and None are skipped
    g = np.tile([0.1, 0.001, 0.0], 300)
    _, gy = render.downsample_mean(np.arange(900), g, 3, geometric=True)
    np.testing.assert_allclose(gy, 0.01)
    _, short_y = render.downsample_mean([1, 2], [None, 2.0], 10)
    assert math.isnan(short_y[0]) and short_y[1] == 2.0


def test_svg_path_breaks_at_nan() -> None:
    d = render.svg_path(np.array([0, 1, 2, 3]), np.array([0.0, np.nan, 2.0, 3.04]))
    assert d == "M0.0 0.0M2.0 2.0L3.0 3.0"


# ---------------------------------------------------------------- PNG


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, out = 8, []
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        data = png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF, f"bad CRC in {kind!r}"
        out.append((kind, data))
        pos += 12 + length
    return out


@pytest.mark.parametrize("channels", [3, 4])
def test_png_encoder_output_decodes_to_the_same_pixels(channels: int) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(7, 5, channels), dtype=np.uint8)
    chunks = _chunks(render.encode_png(pixels))
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    w, h, depth, colour, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (w, h, depth, comp, filt, interlace) == (5, 7, 8, 0, 0, 0)
    assert colour == (2 if channels == 3 else 6)
    raw = np.frombuffer(zlib.decompress(chunks[1][1]), dtype=np.uint8).reshape(7, 1 + 5 * channels)
    assert (raw[:, 0] == 0).all()  # filter type "none" on every scanline
    np.testing.assert_array_equal(raw[:, 1:].reshape(7, 5, channels), pixels)


def test_png_data_uri_and_bad_shapes() -> None:
    uri = render.png_data_uri(np.zeros((2, 2, 3), dtype=np.uint8))
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        render.encode_png(np.zeros((2, 2), dtype=np.uint8))


def test_heatmap_uri_reports_its_scale() -> None:
    _, vmax = render.heatmap_uri(np.array([[0.5, -2.0], [1.0, 0.0]]))
    assert vmax == 2.0
    _, vmax0 = render.heatmap_uri(np.zeros((3, 3)))
    assert vmax0 == 1.0


# ---------------------------------------------------------------- network drawing helpers


def test_grid_resolution_shrinks_for_big_networks() -> None:
    assert render.grid_resolution(105, 3e7, 16, 50) == 50
    assert render.grid_resolution(1_000_000, 3e7, 16, 50) == 16
    assert render.grid_resolution(20_000, 3e7, 16, 50) == 38  # isqrt(1500)
    assert render.grid_resolution(0, 3e7, 16, 50) == 50


def test_link_width_grows_with_magnitude_and_saturates() -> None:
    assert render.link_width(0.0) == 0.5
    assert render.link_width(-5.0) == render.link_width(5.0) == render.link_width(50.0) == 6.0
    assert render.link_width(1.0) < render.link_width(2.0)


def test_activation_to_unit_uses_the_activation_range() -> None:
    np.testing.assert_allclose(
        render.activation_to_unit(np.array([0.0, 0.5, 1.0]), "sigmoid"), [-1, 0, 1]
    )
    np.testing.assert_allclose(
        render.activation_to_unit(np.array([-0.3, 0.3]), "tanh"), [-0.3, 0.3]
    )
    np.testing.assert_allclose(
        render.activation_to_unit(np.array([0.0, 2.0, 4.0]), "relu"), [0, 0.5, 1]
    )
    assert not render.activation_to_unit(np.zeros(3), "linear").any()


# ---------------------------------------------------------------- charts


def test_line_chart_of_a_long_history_stays_small_and_keeps_the_spike() -> None:
    n = 200_000
    epochs = np.arange(1, n + 1)
    loss = 1.0 / np.sqrt(epochs)
    loss[123_456] = 50.0
    test = np.full(n, np.nan)  # no test set
    chart = charts.line_chart(
        epochs, [charts.SeriesIn("train", "train", loss), charts.SeriesIn("test", "test", test)]
    )
    train = chart.series[0]
    assert train.d.count("L") + train.d.count("M") <= 2 * charts.DEFAULT_BUCKETS + 2
    assert chart.series[1].d == ""
    top = min(float(part.split(" ")[1]) for part in train.d.replace("M", "L").split("L")[1:])
    lo, hi = render.nice_domain(0.0, 50.0, 4)
    spike = render.linear_scale(50.0, (lo, hi), (chart.bottom, chart.top))
    assert top == pytest.approx(float(spike), abs=0.06)  # the spike is drawn at its value
    assert len(chart.hover.split(";")) <= charts.HOVER_POINTS


def test_log_chart_ignores_zero_losses_and_empty_chart_says_so() -> None:
    chart = charts.line_chart(
        [1, 2, 3], [charts.SeriesIn("train", "train", np.array([0.0, 0.1, 0.01]))], log=True
    )
    assert not chart.empty and chart.series[0].d.startswith("M")
    assert all(t.label in {"0.01", "0.1", "1e-2", "1e-1"} or t.label for t in chart.y_ticks)
    empty = charts.line_chart([], [charts.SeriesIn("train", "train", np.zeros(0))])
    assert empty.empty


def test_sparkline_is_a_path_or_empty() -> None:
    assert charts.sparkline([1.0, 0.5, 0.25]).startswith("M")
    assert charts.sparkline([None]) == ""

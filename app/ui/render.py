# ruff: noqa: RUF001, RUF002 -- UI text uses real typography (times sign, en dash, minus)
"""Pure view math: scales, ticks, colour maps, downsampling, PNG encoding, SVG paths.

Nothing here touches HTTP, templates or the run manager; every function maps
numbers to numbers (or to short strings such as an SVG path) so it can be
unit-tested without a browser.

Colour choice. The dashboard uses one diverging scale everywhere, the one
TensorFlow Playground made familiar: orange ``#f59322`` (negative / class 0)
→ light grey ``#e8eaeb`` (zero) → blue ``#0877bd`` (positive / class 1).
Orange against blue is the pair that stays distinct under the common forms of
colour-vision deficiency (protanopia and deuteranopia collapse red–green, not
blue–orange; the two ends also differ strongly in lightness, so they survive
tritanopia and greyscale printing as dark-vs-light). Categorical series
(several layers, several runs, several classes) use the Okabe–Ito palette,
designed to be told apart with any common CVD.
"""

from __future__ import annotations

import base64
import math
import struct
import warnings
import zlib
from collections.abc import Sequence

import numpy as np

NEGATIVE_RGB = (0xF5, 0x93, 0x22)  # orange
ZERO_RGB = (0xE8, 0xEA, 0xEB)  # light grey
POSITIVE_RGB = (0x08, 0x77, 0xBD)  # blue

# Okabe & Ito (2008), "Color Universal Design"; black left out (it is the text colour).
CATEGORICAL = (
    "#0072b2",  # blue
    "#e69f00",  # orange
    "#009e73",  # bluish green
    "#cc79a7",  # reddish purple
    "#56b4e9",  # sky blue
    "#d55e00",  # vermillion
    "#f0e442",  # yellow
    "#7f7f7f",  # grey
)
# Classes reuse the diverging ends for the binary case so points match the heatmap.
IMAGE_STEPS = 15  # colour levels per side of the diverging scale in images
CLASS_COLORS = (
    "#f59322",
    "#0877bd",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#7a5195",
    "#7f7f7f",
)


# ---------------------------------------------------------------- scales


def linear_scale(
    values: np.ndarray | Sequence[float | None] | float,
    domain: tuple[float, float],
    range_: tuple[float, float],
) -> np.ndarray:
    """Map ``values`` (any shape) linearly from ``domain`` to ``range_``.

    None becomes NaN; a zero-width domain maps everything to the middle of the range.
    """
    v = _as_float(values)
    d0, d1 = float(domain[0]), float(domain[1])
    r0, r1 = float(range_[0]), float(range_[1])
    if d1 == d0:
        return np.where(np.isnan(v), np.nan, (r0 + r1) / 2)
    return r0 + (v - d0) * (r1 - r0) / (d1 - d0)


def log_scale(
    values: np.ndarray | Sequence[float | None] | float,
    domain: tuple[float, float],
    range_: tuple[float, float],
) -> np.ndarray:
    """Map positive ``values`` logarithmically; zeros, negatives, None and NaN become NaN.

    A domain that is not positive is clamped to a tiny positive number, so a
    chart of losses that touch 0 still draws (the zero points leave gaps).
    """
    v = _as_float(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), np.nan)
    lo = math.log10(max(float(domain[0]), 1e-300))
    hi = math.log10(max(float(domain[1]), 1e-300))
    return linear_scale(logs, (lo, hi), range_)


def _as_float(values: np.ndarray | Sequence[float | None] | float) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return values.astype(np.float64, copy=False)
    arr = np.asarray(values, dtype=object)
    if arr.dtype == object:
        flat = [np.nan if x is None else float(x) for x in arr.ravel()]
        return np.asarray(flat, dtype=np.float64).reshape(arr.shape)
    return arr.astype(np.float64)


def finite_extent(*arrays: np.ndarray, positive: bool = False) -> tuple[float, float] | None:
    """(min, max) over the finite (with ``positive``: finite and > 0) entries; None if none."""
    parts = []
    for a in arrays:
        a = _as_float(a).ravel()
        mask = np.isfinite(a) & (a > 0) if positive else np.isfinite(a)
        if mask.any():
            parts.append((float(a[mask].min()), float(a[mask].max())))
    if not parts:
        return None
    return min(p[0] for p in parts), max(p[1] for p in parts)


def nice_step(span: float, count: int) -> float:
    """A 1-2-5 step so that about ``count`` steps cover ``span``."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= m * power * (1 + 1e-9):
            return m * power
    return 10.0 * power


def nice_domain(lo: float, hi: float, count: int = 5) -> tuple[float, float]:
    """Widen [lo, hi] outwards to multiples of a nice step (a zero-width domain gets ±1 step)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = nice_step(hi - lo, count)
    return math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values inside [lo, hi], about ``count`` of them (1-2-5 steps)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        return []
    if hi == lo:
        return [lo]
    step = nice_step(hi - lo, count)
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [_clean(i * step) for i in range(first, last + 1)]


def _clean(x: float) -> float:
    # 0.30000000000000004 -> 0.3, and -0.0 -> 0.0
    return float(f"{x:.12g}") + 0.0


def log_domain(lo: float, hi: float) -> tuple[float, float]:
    """Widen a positive [lo, hi] to whole powers of ten."""
    lo = max(lo, 1e-300)
    hi = max(hi, lo)
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    if a == b:
        b = a + 1
    return 10.0**a, 10.0**b


def log_ticks(lo: float, hi: float, max_ticks: int = 7) -> list[float]:
    """Powers of ten inside a positive [lo, hi]; every k-th one when there are too many."""
    if lo <= 0 or hi <= 0 or hi < lo:
        return []
    a, b = math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9)
    exps = list(range(a, b + 1))
    stride = max(1, math.ceil(len(exps) / max_ticks))
    return [10.0**e for e in exps[::stride]]


def format_number(value: float | None, digits: int = 3) -> str:
    """Short human form: 3 significant digits, '—' for None/NaN, ∞ for infinities."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    v = float(value)
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.{digits - 1}e}".replace("e-0", "e-").replace("e+0", "e")
    return f"{v:.{digits}g}"


def format_tick(value: float) -> str:
    """Tick label: like format_number but without trailing noise ('0.5', '1e-3', '200')."""
    if value == 0:
        return "0"
    if abs(value) >= 1e3 and float(value).is_integer():
        # epoch axes: 1500 -> "1.5k", 15000 -> "15k", 2500000 -> "2.5M"
        for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= size:
                return f"{value / size:.3g}{suffix}"
    if abs(value) >= 1e4 or abs(value) < 1e-2:
        exp = math.floor(math.log10(abs(value)))
        mant = value / 10**exp
        if abs(mant - round(mant)) < 1e-9 and round(mant) == 1:
            return f"1e{exp}"
        return f"{mant:.3g}e{exp}"
    return f"{value:.6g}"


# ---------------------------------------------------------------- colour


def diverging_rgb(values: np.ndarray | float, vmax: float = 1.0, steps: int = 0) -> np.ndarray:
    """Map values in [-vmax, vmax] to uint8 RGB, shape ``values.shape + (3,)``.

    −vmax → orange, 0 → light grey, +vmax → blue; beyond ±vmax saturates; NaN → grey.
    ``steps`` > 0 quantises each half of the scale to that many levels (Playground
    uses 15 per side): images then compress several times better as PNG.
    """
    v = np.asarray(values, dtype=np.float64)
    scale = vmax if vmax > 0 and math.isfinite(vmax) else 1.0
    with np.errstate(invalid="ignore"):
        t = np.clip(np.nan_to_num(v / scale, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    if steps > 0:
        t = np.round(t * steps) / steps
    neg = np.asarray(NEGATIVE_RGB, dtype=np.float64)
    mid = np.asarray(ZERO_RGB, dtype=np.float64)
    pos = np.asarray(POSITIVE_RGB, dtype=np.float64)
    tt = t[..., None]
    rgb = np.where(tt < 0, mid + (neg - mid) * (-tt), mid + (pos - mid) * tt)
    return np.rint(rgb).astype(np.uint8)


def diverging_hex(value: float, vmax: float = 1.0) -> str:
    """One colour of the diverging scale as '#rrggbb' (the same colours as diverging_rgb).

    Scalar Python on purpose: it runs once per link of the network diagram, per frame.
    """
    scale = vmax if vmax > 0 and math.isfinite(vmax) else 1.0
    v = float(value)
    t = 0.0 if math.isnan(v) else max(-1.0, min(1.0, v / scale))
    end = NEGATIVE_RGB if t < 0 else POSITIVE_RGB
    a = abs(t)
    r, g, b = (round(m + (e - m) * a) for m, e in zip(ZERO_RGB, end, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def categorical_rgb(labels: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
    """Class colours (CLASS_COLORS) for integer ``labels`` (any shape) → uint8 RGB.

    ``confidence`` in [0, 1] (same shape) fades the colour towards the neutral
    grey, so a multi-class decision map shows where the network is unsure.
    """
    palette = np.asarray([_hex_to_rgb(c) for c in CLASS_COLORS], dtype=np.float64)
    lab = np.asarray(labels, dtype=np.int64) % len(CLASS_COLORS)
    rgb = palette[lab]
    if confidence is not None:
        c = np.clip(np.asarray(confidence, dtype=np.float64), 0.0, 1.0)[..., None]
        rgb = np.asarray(ZERO_RGB, dtype=np.float64) + (rgb - np.asarray(ZERO_RGB)) * c
    return np.rint(rgb).astype(np.uint8)


def lighten(rgb: np.ndarray, amount: float) -> np.ndarray:
    """Blend uint8 colours (..., 3) towards white by ``amount`` in [0, 1]."""
    out = np.asarray(rgb, dtype=np.float64) * (1.0 - amount) + 255.0 * amount
    return np.rint(out).astype(np.uint8)


def _hex_to_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


# ---------------------------------------------------------------- downsampling


def downsample_minmax(
    x: np.ndarray | Sequence[float], y: np.ndarray | Sequence[float | None], n_buckets: int
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a series to at most ``2 * n_buckets + 2`` points, keeping each bucket's min and max.

    x: (n,) increasing; y: (n,) with NaN/None as gaps (skipped). Within a bucket
    the min and the max come out in x order, so spikes (divergence, a sudden
    drop) survive however long the history is; the first and the last finite
    points are kept too, so the curve spans the whole history. A short series
    comes back as is (as float arrays).
    """
    xs = _as_float(x).ravel()
    ys = _as_float(y).ravel()
    n = ys.size
    if n <= 2 * n_buckets:
        return xs, ys
    k = math.ceil(n / n_buckets)
    rows = math.ceil(n / k)
    pad = rows * k - n
    yp = np.concatenate([ys, np.full(pad, np.nan)]).reshape(rows, k)
    finite = np.isfinite(yp)
    has = finite.any(axis=1)
    lo_idx = np.argmin(np.where(finite, yp, np.inf), axis=1)
    hi_idx = np.argmax(np.where(finite, yp, -np.inf), axis=1)
    base = np.arange(rows) * k
    first = np.minimum(lo_idx, hi_idx) + base
    second = np.maximum(lo_idx, hi_idx) + base
    idx = np.stack([first, second], axis=1)[has].ravel()
    # A flat bucket has min == max at one index: keep it once.
    finite_idx = np.flatnonzero(np.isfinite(ys))
    ends = finite_idx[[0, -1]] if finite_idx.size else np.zeros(0, dtype=np.int64)
    idx = np.unique(np.concatenate([idx, ends]))  # sorted, so still in x order
    return xs[idx], ys[idx]


def downsample_mean(
    x: np.ndarray | Sequence[float],
    y: np.ndarray | Sequence[float | None],
    n_buckets: int,
    geometric: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Average a noisy series into at most ``n_buckets`` points (x: bucket mean of x).

    For per-step noise (gradient norms from mini-batches) the trend matters, not
    the envelope; ``geometric`` averages log10(y) of the positive values (the
    right mean for a log-scale chart). Gaps (NaN/None, and y ≤ 0 when geometric)
    are skipped; an all-gap bucket is left out. A short series comes back as is.
    """
    xs = _as_float(x).ravel()
    ys = _as_float(y).ravel()
    n = ys.size
    if n <= n_buckets:
        return xs, ys
    if geometric:
        with np.errstate(divide="ignore", invalid="ignore"):
            ys = np.where(ys > 0, np.log10(np.where(ys > 0, ys, 1.0)), np.nan)
    k = math.ceil(n / n_buckets)
    rows = math.ceil(n / k)
    pad = rows * k - n
    yp = np.concatenate([ys, np.full(pad, np.nan)]).reshape(rows, k)
    xp = np.concatenate([xs, np.full(pad, np.nan)]).reshape(rows, k)
    finite = np.isfinite(yp)
    counts = finite.sum(axis=1)
    sums = np.where(finite, yp, 0.0).sum(axis=1)
    has = counts > 0
    my = sums[has] / counts[has]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mx = np.nanmean(xp, axis=1)[has]
    return mx, (10.0**my if geometric else my)


def subsample_indices(n: int, limit: int) -> np.ndarray:
    """Evenly spread indices of at most ``limit`` of ``n`` items (deterministic)."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


# ---------------------------------------------------------------- SVG paths


def svg_path(px: np.ndarray, py: np.ndarray) -> str:
    """An SVG path 'M x y L x y …' through pixel coordinates; NaN breaks the line.

    Coordinates are rounded to 0.1 px (invisible, and keeps fragments small).
    """
    xs = np.asarray(px, dtype=np.float64).ravel()
    ys = np.asarray(py, dtype=np.float64).ravel()
    parts: list[str] = []
    pen_down = False
    for xv, yv in zip(xs.tolist(), ys.tolist(), strict=True):
        if not (math.isfinite(xv) and math.isfinite(yv)):
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{xv:.1f} {yv:.1f}")
        pen_down = True
    return "".join(parts)


# ---------------------------------------------------------------- PNG


def encode_png(pixels: np.ndarray) -> bytes:
    """Encode uint8 pixels (h, w, 3) RGB or (h, w, 4) RGBA as a PNG (no filter, zlib level 6)."""
    img = np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8))
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"expected (h, w, 3|4) pixels, got shape {img.shape}")
    h, w, channels = img.shape
    color_type = 2 if channels == 3 else 6
    # Each scanline starts with its filter type byte (0 = none).
    raw = np.concatenate([np.zeros((h, 1), dtype=np.uint8), img.reshape(h, w * channels)], axis=1)
    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_data_uri(pixels: np.ndarray) -> str:
    """``data:image/png;base64,…`` for ``encode_png(pixels)``."""
    return "data:image/png;base64," + base64.b64encode(encode_png(pixels)).decode("ascii")


def heatmap_uri(values: np.ndarray, vmax: float | None = None) -> tuple[str, float]:
    """A matrix (h, w) as a diverging-colour PNG data URI; returns (uri, vmax used).

    ``vmax`` defaults to max |value| (1 when the matrix is all zero), so the
    legend beside the image can say what the ends mean.
    """
    m = np.asarray(values, dtype=np.float64)
    if m.ndim == 1:
        m = m[None, :]
    if vmax is None:
        finite = np.abs(m[np.isfinite(m)])
        vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return png_data_uri(diverging_rgb(m, vmax, IMAGE_STEPS)), vmax


# ---------------------------------------------------------------- network drawing


def grid_resolution(n_params: int, budget: float, lo: int, hi: int) -> int:
    """Side of a square evaluation grid so that side² · n_params stays near ``budget``.

    A forward pass costs about one multiply-add per parameter per point: small
    nets get the full ``hi`` resolution, big ones fewer points (never below ``lo``)
    so a frame's render stays a few milliseconds.
    """
    side = math.isqrt(int(budget // max(n_params, 1)))
    return max(lo, min(hi, side))


def link_width(
    weight: float, max_abs: float = 5.0, min_px: float = 0.5, max_px: float = 6.0
) -> float:
    """Stroke width of a link: grows with |w| up to ``max_abs`` (Playground: 1–10 px for 0–5)."""
    a = min(abs(weight), max_abs) if math.isfinite(weight) else max_abs
    return min_px + (max_px - min_px) * a / max_abs


def activation_to_unit(values: np.ndarray, activation: str) -> np.ndarray:
    """Bring a neuron's output onto [-1, 1] for colouring, by the activation's range.

    tanh is already there; sigmoid/softmax live in [0, 1] (0.5 ↦ grey); unbounded
    ones (relu, linear, leaky_relu) are divided by the largest |value| shown.
    """
    a = np.asarray(values, dtype=np.float64)
    if activation == "tanh":
        return a
    if activation in ("sigmoid", "softmax"):
        return 2.0 * a - 1.0
    finite = np.abs(a[np.isfinite(a)])
    top = float(finite.max()) if finite.size else 0.0
    return a / top if top > 0 else np.zeros_like(a)

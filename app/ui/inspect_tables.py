# ruff: noqa: RUF001, RUF002 -- UI text uses real math typography
"""The inspector's tables: vectors as rows of cells, matrices as SVG or PNG heatmaps,
all coloured on one honest magnitude scale.

The scale (``MagnitudeScale``): a value's sign picks the colour (the dashboard's
diverging orange/blue), its order of magnitude the intensity — full at the
page's reference ``ref`` (the largest |W| rounded to a power of ten) and
above, fading one equal step per decade to white at ``ref``·10⁻⁴ (``DECADES``).
Every table on a page shares it, so a table of 1e-7s is pale next to one of 1s
instead of being saturated by its own max.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.ui import render

SVG_MAX = 16  # matrices up to this many rows and columns are drawn cell by cell
TEXT_MAX = 6  # ... and up to this size with their values written in the cells
CELL = 26  # px per SVG cell: the pitch of vector cells, so rows of W line up with z
CELL_W, CELL_H = 60, 26  # a cell with its value written in
VECTOR_ROWS = 16  # a vector is a column; longer ones wrap into side-by-side columns
DECADES = 4  # white at ref·1e-4 and below
DARK = 0.55  # intensity above which a cell's text is white


@dataclass(frozen=True)
class MagnitudeScale:
    """Signed log-magnitude: intensity (log10|v| − log10 ref + decades) / decades in [0, 1]."""

    ref: float = 1.0
    decades: int = DECADES

    @classmethod
    def for_weights(cls, weights: Sequence[Any]) -> MagnitudeScale:
        """The reference: max |W| over the layers rounded to the nearest power of ten (in
        log10; 1 if there are none), so the legend reads in round decades."""
        top = 0.0
        for w in weights:
            a = np.abs(render._as_float(w if w is not None else []))
            a = a[np.isfinite(a)]
            if a.size:
                top = max(top, float(a.max()))
        return cls(10.0 ** round(math.log10(top)) if top > 0 else 1.0)

    def signed(self, values: Any) -> np.ndarray:
        """sign(v)·intensity(v) elementwise (NaN stays NaN): the diverging scale's input."""
        v = np.asarray(values, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (np.log10(np.abs(v)) - math.log10(self.ref) + self.decades) / self.decades
        t = np.clip(np.nan_to_num(t, nan=0.0, neginf=0.0, posinf=1.0), 0.0, 1.0)
        return np.where(np.isnan(v), np.nan, np.sign(v) * t)

    def colour(self, value: float) -> str:
        return render.diverging_hex(float(self.signed(value)), 1.0)

    def dark(self, value: float) -> bool:
        return bool(np.isfinite(value)) and abs(float(self.signed(value))) > DARK

    def legend(self) -> list[tuple[str, str, str]]:
        """(|v| label, colour of −|v|, colour of +|v|) per decade, faintest first."""
        top = round(math.log10(self.ref))
        return [
            (f"1e{e}" if e else "1", self.colour(-(10.0**e)), self.colour(10.0**e))
            for e in range(top - self.decades, top + 1)
        ]


UNIT = MagnitudeScale()


@dataclass
class Cell:
    text: str
    title: str
    bg: str
    dark: bool  # a saturated cell: white text


@dataclass
class Vector:
    """A column of values as cells; ``lines`` are the table rows (wrapped after VECTOR_ROWS)."""

    label: str
    lines: list[list[Cell]]
    vmax: str
    n: int
    shown: int
    id: str = ""


@dataclass
class SvgCell:
    x: int
    y: int
    fill: str
    title: str
    text: str
    dark: bool
    row: int = 0
    col: int = 0


@dataclass
class Matrix:
    """A matrix as SVG cells (small) or a PNG data URI (big)."""

    label: str
    shape: str
    vmax: str
    truncated: bool
    shown: str
    cells: list[SvgCell] = field(default_factory=list)
    uri: str = ""
    width: int = 0
    height: int = 0
    cell: int = CELL
    cell_h: int = CELL
    id: str = ""
    rows: int = 0
    cols: int = 0


def as_array(values: Any) -> np.ndarray:
    return render._as_float(values if values is not None else [])


def _vmax(a: np.ndarray) -> float:
    finite = np.abs(a[np.isfinite(a)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 0.0


def vector(
    label: str, values: Any, n: int | None = None, id_: str = "", scale: MagnitudeScale = UNIT
) -> Vector:
    """Cells of a 1-D list (None -> NaN); ``n`` is the full length before truncation."""
    a = as_array(values).ravel()
    cells = [
        Cell(render.format_number(v), f"{label}[{i}] = {v!r}", scale.colour(v), scale.dark(v))
        for i, v in enumerate(a.tolist())
    ]
    lines = [cells[i::VECTOR_ROWS] for i in range(min(VECTOR_ROWS, len(cells)))]
    return Vector(label, lines, render.format_number(_vmax(a)), n or a.size, a.size, id_)


def matrix(
    label: str, values: Any, shape: Sequence[int], id_: str = "", scale: MagnitudeScale = UNIT
) -> Matrix:
    """A heatmap of a (rows, cols) list; ``shape`` is the full shape before truncation."""
    m = as_array(values)
    if m.ndim != 2:
        m = m.reshape(int(shape[0]), -1) if m.size else np.zeros((0, 0))
    rows, cols = m.shape
    full = f"{shape[0]}×{shape[1]}"
    truncated = (rows, cols) != (int(shape[0]), int(shape[1]))
    out = Matrix(label, full, render.format_number(_vmax(m)), truncated, f"{rows}×{cols}", id=id_)
    out.rows, out.cols = rows, cols
    if rows <= SVG_MAX and cols <= SVG_MAX:
        written = rows <= TEXT_MAX and cols <= TEXT_MAX
        out.cell, out.cell_h = (CELL_W, CELL_H) if written else (CELL, CELL)
        for i in range(rows):
            for j in range(cols):
                v = float(m[i, j])
                out.cells.append(
                    SvgCell(
                        j * out.cell,
                        i * out.cell_h,
                        scale.colour(v),
                        f"{label}[{i},{j}] = {v!r}",
                        render.format_number(v) if written else "",
                        scale.dark(v),
                        i,
                        j,
                    )
                )
        out.width, out.height = cols * out.cell, rows * out.cell_h
    elif rows and cols:
        out.uri, _ = render.heatmap_uri(scale.signed(m), 1.0)
        px = max(2, min(8, 256 // max(rows, cols)))
        out.width, out.height = cols * px, rows * px
    return out

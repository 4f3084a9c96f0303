"""Your own data as CSV text → the rows of a `custom` dataset, with errors in plain words.

One sample a line: its inputs, then its target (an integer class label 0, 1, … for
classification). Cells are separated by commas, semicolons, tabs or spaces; blank lines
and lines starting with # are skipped. A first row with no number in it is a header.
Rows and columns are counted as a spreadsheet shows the file: row = line number.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

SEPARATORS = re.compile(r"[,;\s]+")


class CsvError(ValueError):
    """A message that names the place (``row 3, column 2: 'abc' is not a number``)."""


@dataclass(frozen=True)
class CsvRows:
    x: list[list[float]]
    y: list[float] | list[int]  # class labels for classification, one target for regression
    header: list[str] | None  # the header row's cells, when the text had one


def _cells(line: str) -> list[str]:
    return [cell for cell in SEPARATORS.split(line.strip()) if cell]


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _parse_row(cells: list[str], row: int) -> list[float]:
    values = []
    for column, cell in enumerate(cells, start=1):
        value = _number(cell)
        if value is None:
            raise CsvError(f"row {row}, column {column}: '{cell}' is not a number")
        if not math.isfinite(value):
            raise CsvError(f"row {row}, column {column}: '{cell}' is not a finite number")
        values.append(value)
    return values


def _label(value: float, row: int, column: int, cell: str) -> int:
    if not value.is_integer() or value < 0:
        raise CsvError(
            f"row {row}, column {column}: the class label '{cell}' must be a whole number "
            "0, 1, 2, …"
        )
    return int(value)


def parse_csv(text: str, task: str, *, drawn: bool = False) -> CsvRows:
    """CSV text → inputs and targets; CsvError names the row and column of a problem.

    ``drawn``: the text comes from the drawing widget, so the too-few-samples and
    one-class messages speak of points rather than rows."""
    lines = [
        (row, _cells(line))
        for row, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    header = None
    if lines and all(_number(cell) is None for cell in lines[0][1]):
        header = lines.pop(0)[1]
    if drawn and len(lines) < 2:
        verb = "is" if len(lines) == 1 else "are"
        raise CsvError(f"draw at least 2 points (there {verb} {len(lines)})")
    if not lines:
        raise CsvError("no data rows: one sample a line, its inputs and then its target")
    width = len(lines[0][1])
    x: list[list[float]] = []
    targets: list[float] = []
    for row, cells in lines:
        if len(cells) < 2:
            raise CsvError(f"row {row}: needs at least one input and a target (2 columns)")
        if len(cells) != width:
            raise CsvError(f"row {row} has {len(cells)} columns, but row {lines[0][0]} has {width}")
        values = _parse_row(cells, row)
        x.append(values[:-1])
        targets.append(values[-1])
    if len(x) < 2:
        raise CsvError("at least 2 data rows are needed")
    if task != "classification":
        return CsvRows(x, targets, header)
    labels = [
        _label(v, row, width, cells[-1]) for v, (row, cells) in zip(targets, lines, strict=True)
    ]
    if len(set(labels)) < 2 and drawn:
        raise CsvError(f"every point is class {labels[0]}: add points of another class")
    if len(set(labels)) < 2:
        raise CsvError(f"every row is class {labels[0]}: classification needs at least two classes")
    return CsvRows(x, labels, header)

# ruff: noqa: RUF001, RUF002 -- UI text uses real math typography (minus, primes, ⊙)
"""The backprop inspector: one SGD step's numbers next to the article's equations.

``GET /runs/{id}/inspect`` is the page; ``GET /ui/runs/{id}/inspect`` the fragment
the batch/sample pickers swap in (htmx). The numbers come from
``RunManager.inspect`` (capped at 64 rows/units); this module only turns them into
tables: vectors as rows of cells coloured on the dashboard's diverging scale,
small matrices (≤ 16×16) as SVG heatmaps with each value in a ``<title>``, bigger
ones as PNG heatmaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.runs.errors import ProblemError
from app.ui import render

router = APIRouter(include_in_schema=False)

SVG_MAX = 16  # matrices up to this many rows and columns are drawn cell by cell
TEXT_MAX = 6  # ... and up to this size with their values written in the cells
CELL = 26  # px per SVG cell: the pitch of vector cells, so rows of W line up with z
CELL_W, CELL_H = 60, 26  # a cell with its value written in
VECTOR_ROWS = 16  # a vector is a column; longer ones wrap into side-by-side columns

SUPERSCRIPTS = str.maketrans("0123456789L", "⁰¹²³⁴⁵⁶⁷⁸⁹ᴸ")
NAMES = {
    "sigmoid": "σ",
    "tanh": "tanh",
    "relu": "ReLU",
    "leaky_relu": "LeakyReLU",
    "linear": "id",
    "softmax": "softmax",
}
# f' as the trainer takes it: (name, value) with {a}, {a2} (a squared), {z} filled per layer
DERIVATIVES = {
    "sigmoid": ("σ′", "{a} ⊙ (1 − {a})"),
    "tanh": ("tanh′", "1 − {a2}"),
    "relu": ("ReLU′", "1 where {z} > 0, else 0"),
    "leaky_relu": ("LeakyReLU′", "1 where {z} > 0, else 0.01"),
    "linear": ("id′", "1"),
}


def derivative_text(activation: str, layer: int | None = None) -> str:
    """'σ′(z) = a ⊙ (1 − a)', or with layer l: 'σ′(z⁽ˡ⁾) = a⁽ˡ⁾ ⊙ (1 − a⁽ˡ⁾)'."""
    name, value = DERIVATIVES[activation]
    if layer is None:
        z, a, a2 = "z", "a", "a²"
    else:
        z, a = f"z{sup(layer)}", f"a{sup(layer)}"
        a2 = f"({a})²"
    return f"{name}({z}) = " + value.format(a=a, a2=a2, z=z)


def sup(layer: int | str) -> str:
    """'(l)' as superscript: 2 -> '⁽²⁾'."""
    return f"⁽{str(layer).translate(SUPERSCRIPTS)}⁾"


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


def _as_array(values: Any) -> np.ndarray:
    return render._as_float(values if values is not None else [])


def _vmax(a: np.ndarray) -> float:
    finite = np.abs(a[np.isfinite(a)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def _is_dark(value: float, vmax: float) -> bool:
    return bool(np.isfinite(value)) and abs(value) / vmax > 0.55


def vector(label: str, values: Any, n: int | None = None, id_: str = "") -> Vector:
    """Cells of a 1-D list (None -> NaN); ``n`` is the full length before truncation."""
    a = _as_array(values).ravel()
    vmax = _vmax(a)
    cells = [
        Cell(
            render.format_number(v),
            f"{label}[{i}] = {v!r}",
            render.diverging_hex(v, vmax),
            _is_dark(v, vmax),
        )
        for i, v in enumerate(a.tolist())
    ]
    lines = [cells[i::VECTOR_ROWS] for i in range(min(VECTOR_ROWS, len(cells)))]
    return Vector(label, lines, render.format_number(vmax), n or a.size, a.size, id_)


def matrix(label: str, values: Any, shape: Sequence[int], id_: str = "") -> Matrix:
    """A heatmap of a (rows, cols) list; ``shape`` is the full shape before truncation."""
    m = _as_array(values)
    if m.ndim != 2:
        m = m.reshape(int(shape[0]), -1) if m.size else np.zeros((0, 0))
    rows, cols = m.shape
    vmax = _vmax(m)
    full = f"{shape[0]}×{shape[1]}"
    truncated = (rows, cols) != (int(shape[0]), int(shape[1]))
    out = Matrix(label, full, render.format_number(vmax), truncated, f"{rows}×{cols}", id=id_)
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
                        render.diverging_hex(v, vmax),
                        f"{label}[{i},{j}] = {v!r}",
                        render.format_number(v) if written else "",
                        _is_dark(v, vmax),
                    )
                )
        out.width, out.height = cols * out.cell, rows * out.cell_h
    elif rows and cols:
        out.uri, _ = render.heatmap_uri(m, vmax)
        scale = max(2, min(8, 256 // max(rows, cols)))
        out.width, out.height = cols * scale, rows * scale
    return out


# ---------------------------------------------------------------- equations


def loss_equations(loss: str, output: str) -> dict[str, str]:
    """The loss and the output error δ⁽ᴸ⁾ as the run computes them (n rows, k outputs)."""
    L = sup("L")
    if loss == "cross_entropy":
        if output == "sigmoid":
            e = "E = −(1/n) Σ [y log ŷ + (1 − y) log(1 − ŷ)]"
        else:
            e = "E = −(1/n) Σ y · log ŷ"
        return {
            "loss": e,
            "chain": f"∂E/∂a{L} ⊙ σ′(z{L})"
            if output == "sigmoid"
            else f"softmax′(z{L})ᵀ ∂E/∂a{L} (the softmax Jacobian)",
            "delta": f"δ{L} = (ŷ − y) / n",
            "fused": "yes",
        }
    d_e = f"∂E/∂a{L} = 2 (ŷ − y) / (n·k)"
    if output == "softmax":  # softmax's Jacobian is not diagonal
        delta = f"δ{L} = a{L} ⊙ (∂E/∂a{L} − (∂E/∂a{L} · a{L}))"
    else:
        delta = f"δ{L} = ∂E/∂a{L} ⊙ {DERIVATIVES[output][0]}(z{L})"
    return {"loss": "E = (1/(n·k)) Σ (ŷ − y)²", "dE": d_e, "delta": delta, "fused": "", "chain": ""}


def _derivative(activation: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """f′(z) elementwise, the way the trainer takes it (from a where that is cheaper)."""
    if activation in ("sigmoid", "tanh"):
        out: np.ndarray = a * (1 - a) if activation == "sigmoid" else 1 - a * a
        return out
    if activation == "relu":
        return (z > 0).astype(np.float64)
    if activation == "leaky_relu":
        return np.where(z > 0, 1.0, 0.01)
    return np.ones_like(z)


def inspect_context(run: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
    """Template context of the inspector's content from a public Run and manager.inspect()."""
    sizes = [int(s) for s in step["layer_sizes"]]
    n_layers = len(sizes) - 1
    act, out_act = str(step["activation"]), str(step["output_activation"])
    sample = step["sample"]
    s_layers = sample["layers"]
    lim = int(step["limit"])
    layers = []
    for i, layer in enumerate(step["layers"]):
        l_ = i + 1
        f = out_act if l_ == n_layers else act
        fname = NAMES[f]
        n_in, n_out = int(layer["n_in"]), int(layer["n_out"])
        prev = sample["x"] if i == 0 else s_layers[i - 1]["a"]
        entry: dict[str, Any] = {
            "index": l_,
            "sup": sup(l_),
            "prev_sup": sup(l_ - 1),
            "activation": f,
            "fname": fname,
            "output": l_ == n_layers,
            "truncated": bool(layer["truncated"]),
            "shape": f"{n_out}×{n_in}",
            "a_prev": vector(f"a{sup(l_ - 1)}", prev, n_in, f"inspect-a{l_ - 1}"),
            "w": matrix(f"W{sup(l_)}", layer["weights"], (n_out, n_in), f"inspect-w{l_}"),
            "b": None
            if layer["biases"] is None
            else vector(f"b{sup(l_)}", layer["biases"], n_out, f"inspect-b{l_}"),
            "z": vector(f"z{sup(l_)}", s_layers[i]["z"], n_out, f"inspect-z{l_}"),
            "a": vector(f"a{sup(l_)}", s_layers[i]["a"], n_out, f"inspect-a{l_}"),
            "delta": vector(f"δ{sup(l_)}", s_layers[i]["delta"], n_out, f"inspect-delta{l_}"),
            "nabla_w": matrix(
                f"∂E/∂W{sup(l_)}", layer["nabla_w"], (n_out, n_in), f"inspect-nabla-w{l_}"
            ),
            "nabla_b": None
            if layer["nabla_b"] is None
            else vector(f"∂E/∂b{sup(l_)}", layer["nabla_b"], n_out, f"inspect-nabla-b{l_}"),
            "w_after": matrix(
                f"W{sup(l_)} after", layer["weights_after"], (n_out, n_in), f"inspect-w-after{l_}"
            ),
            "b_after": None
            if layer["biases_after"] is None
            else vector(f"b{sup(l_)} after", layer["biases_after"], n_out, f"inspect-b-after{l_}"),
            "penalty": layer["penalty_w"] is not None,
        }
        if l_ < n_layers:
            z, a = _as_array(s_layers[i]["z"]), _as_array(s_layers[i]["a"])
            entry["df"] = vector(f"{DERIVATIVES[f][0]}(z{sup(l_)})", _derivative(f, z, a), n_out)
            entry["df_text"] = derivative_text(f, l_)
            entry["df_name"] = f"{DERIVATIVES[f][0]}(z{sup(l_)})"
            nxt = step["layers"][l_]
            w_t = _as_array(nxt["weights"]).T
            entry["w_next_t"] = matrix(
                f"W{sup(l_ + 1)}ᵀ", w_t, (nxt["n_in"], nxt["n_out"]), f"inspect-wt{l_ + 1}"
            )
            entry["delta_next"] = vector(f"δ{sup(l_ + 1)}", s_layers[i + 1]["delta"], sizes[l_ + 1])
        layers.append(entry)
    y_hat = _as_array(s_layers[-1]["a"])
    y = _as_array(sample["y"])
    n_batches, batch, rows = int(step["n_batches"]), int(step["batch"]), int(step["batch_size"])
    return {
        "run": run,
        "step": step,
        "layers": layers,
        "backward": [entry for entry in reversed(layers) if not entry["output"]],
        "L": n_layers,
        "L_sup": sup("L"),
        "eq": loss_equations(str(step["loss_name"]), out_act),
        "x": vector("x", sample["x"], sizes[0], "inspect-x"),
        "y": vector("y", sample["y"], sizes[-1], "inspect-y"),
        "y_hat": vector("ŷ", y_hat, sizes[-1], "inspect-y-hat"),
        "error": vector("ŷ − y", y_hat - y if y.size == y_hat.size else [], sizes[-1]),
        "loss": render.format_number(step["loss"], 4),
        "loss_exact": repr(step["loss"]),
        "lr": f"{float(step['learning_rate']):g}",
        "optimizer": str(step["optimizer"]),
        "batch": batch,
        "n_batches": n_batches,
        "rows": rows,
        "first_row": int(step["batch_start"]),
        "last_row": int(step["batch_start"]) + rows - 1,
        "sample": int(sample["index"]),
        "sample_row": int(sample["row"]),
        "prev_batch": batch - 1 if batch > 0 else None,
        "next_batch": batch + 1 if batch + 1 < n_batches else None,
        "prev_sample": int(sample["index"]) - 1 if int(sample["index"]) > 0 else None,
        "next_sample": int(sample["index"]) + 1 if int(sample["index"]) + 1 < rows else None,
        "limit": lim,
        "wide": any(entry["truncated"] for entry in layers),
        "bias": step["layers"][0]["biases"] is not None,
        "penalty": any(entry["penalty"] for entry in layers),
        "hidden_derivative": derivative_text(act) if n_layers > 1 else "",
    }


# ---------------------------------------------------------------- routes


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


async def _context(request: Request, run_id: str) -> dict[str, Any]:
    manager = request.app.state.manager
    run = manager.get(run_id).public()
    batch, sample = (
        _int(request.query_params.get("batch")),
        _int(request.query_params.get("sample")),
    )
    try:
        step = await manager.inspect(run_id, batch, sample)
        note = ""
    except ProblemError as exc:
        if exc.status_code != 422:
            raise
        # Out of range (e.g. a sample past the end of the shorter last batch): fall back.
        fallback = "its first sample" if exc.field == "sample" else "batch 0"
        note = f"{exc.detail}: showing {fallback} instead"
        step = await manager.inspect(run_id, batch if exc.field == "sample" else 0, 0)
    return inspect_context(run, step) | {"note": note}


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    templates = request.app.state.ui.templates
    return templates.TemplateResponse(request, name, context, status_code=status)  # type: ignore[no-any-return]


@router.get("/runs/{run_id}/inspect", response_class=HTMLResponse)
async def inspect_page(request: Request, run_id: str) -> HTMLResponse:
    try:
        context = await _context(request, run_id)
    except ProblemError:
        return _page(
            request,
            "pages/not_found.html",
            {"title": "Not found", "active": "", "message": "There is no run with this id."},
            404,
        )
    return _page(
        request,
        "pages/inspect.html",
        context | {"title": f"Inspect · {context['run']['name']}", "active": ""},
    )


@router.get("/ui/runs/{run_id}/inspect", response_class=HTMLResponse)
async def inspect_fragment(request: Request, run_id: str) -> HTMLResponse:
    try:
        context = await _context(request, run_id)
    except ProblemError as exc:
        return _page(
            request, "partials/control_message.html", {"text": exc.detail, "error": True}, 404
        )
    return _page(request, "partials/inspect_content.html", context)

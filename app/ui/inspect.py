# ruff: noqa: RUF001, RUF002 -- UI text uses real math typography (minus, primes, ⊙)
"""The backprop inspector: one SGD step's numbers next to the article's equations.

``GET /runs/{id}/inspect`` is the page; ``GET /ui/runs/{id}/inspect`` the fragment
the batch/sample pickers swap in (htmx); ``GET /ui/runs/{id}/inspect/chain`` one
weight's chain rule (``inspect_chain``); ``POST /ui/runs/{id}/inspect/apply`` takes
the shown step (``app.runs.inspecting``) and re-renders. The numbers come from
``RunManager.inspect`` (capped at 64 rows/units); the tables and their shared
magnitude colour scale are ``inspect_tables``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.nn.activations import ACTIVATIONS
from app.runs.errors import ProblemError
from app.runs.inspecting import apply_step
from app.ui import render
from app.ui.inspect_chain import ChainRule, chain_rule, check_rows
from app.ui.inspect_tables import MagnitudeScale, Matrix, Vector, as_array, matrix, vector

__all__ = ["Matrix", "Vector", "matrix", "vector"]

router = APIRouter(include_in_schema=False)

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


def _layer_entry(step: dict[str, Any], i: int, scale: MagnitudeScale) -> dict[str, Any]:
    """Layer i+1's tables (its forward, backward, gradient and update rows)."""
    sizes = [int(s) for s in step["layer_sizes"]]
    n_layers, l_ = len(sizes) - 1, i + 1
    layer, sample = step["layers"][i], step["sample"]
    s_layers = sample["layers"]
    f = str(step["output_activation"] if l_ == n_layers else step["activation"])
    n_in, n_out = int(layer["n_in"]), int(layer["n_out"])
    net_in = sample.get("features") or sample["x"]  # a⁽⁰⁾: what the network reads
    prev = net_in if i == 0 else s_layers[i - 1]["a"]
    s, shape = sup(l_), (n_out, n_in)

    def vec(label: str, values: Any, n: int, id_: str = "") -> Vector | None:
        return None if values is None else vector(label, values, n, id_, scale)

    def mat(label: str, values: Any, id_: str) -> Matrix:
        return matrix(label, values, shape, id_, scale)

    entry: dict[str, Any] = {
        "index": l_,
        "sup": s,
        "prev_sup": sup(l_ - 1),
        "activation": f,
        "fname": NAMES[f],
        "output": l_ == n_layers,
        "truncated": bool(layer["truncated"]),
        "shape": f"{n_out}×{n_in}",
        "a_prev": vec(f"a{sup(l_ - 1)}", prev, n_in, f"inspect-a{l_ - 1}"),
        "w": mat(f"W{s}", layer["weights"], f"inspect-w{l_}"),
        "b": vec(f"b{s}", layer["biases"], n_out, f"inspect-b{l_}"),
        "z": vec(f"z{s}", s_layers[i]["z"], n_out, f"inspect-z{l_}"),
        "a": vec(f"a{s}", s_layers[i]["a"], n_out, f"inspect-a{l_}"),
        "delta": vec(f"δ{s}", s_layers[i]["delta"], n_out, f"inspect-delta{l_}"),
        "nabla_w": mat(f"∂E/∂W{s}", layer["nabla_w"], f"inspect-nabla-w{l_}"),
        "nabla_b": vec(f"∂E/∂b{s}", layer["nabla_b"], n_out, f"inspect-nabla-b{l_}"),
        "update_w": mat(f"ΔW{s}", layer["update_w"], f"inspect-update-w{l_}"),
        "update_b": vec(f"Δb{s}", layer["update_b"], n_out, f"inspect-update-b{l_}"),
        "w_before": mat(f"W{s}", layer["weights"], f"inspect-w-before{l_}"),
        "b_before": vec(f"b{s}", layer["biases"], n_out, f"inspect-b-before{l_}"),
        "w_after": mat(f"W{s} after", layer["weights_after"], f"inspect-w-after{l_}"),
        "b_after": vec(f"b{s} after", layer["biases_after"], n_out, f"inspect-b-after{l_}"),
        "penalty": layer["penalty_w"] is not None,
    }
    if l_ < n_layers:
        z, a = as_array(s_layers[i]["z"]), as_array(s_layers[i]["a"])
        df = ACTIVATIONS[f].df(z, a)  # f' as app.nn takes it
        entry["df"] = vec(f"{DERIVATIVES[f][0]}(z{s})", df, n_out)
        entry["df_text"] = derivative_text(f, l_)
        entry["df_name"] = f"{DERIVATIVES[f][0]}(z{s})"
        nxt = step["layers"][l_]
        w_t = as_array(nxt["weights"]).T
        entry["w_next_t"] = matrix(
            f"W{sup(l_ + 1)}ᵀ", w_t, (nxt["n_in"], nxt["n_out"]), f"inspect-wt{l_ + 1}", scale
        )
        entry["delta_next"] = vec(f"δ{sup(l_ + 1)}", s_layers[i + 1]["delta"], sizes[l_ + 1])
    return entry


def default_weight(step: dict[str, Any]) -> tuple[int, int, int]:
    """The weight whose chain rule the page opens with: layer 1's largest gradient."""
    for c in step.get("gradient_check") or []:
        return int(c["layer"]), int(c["row"]), int(c["col"])
    return 1, 0, 0


def inspect_context(
    run: dict[str, Any], step: dict[str, Any], weight: tuple[int, int, int] | None = None
) -> dict[str, Any]:
    """Template context of the inspector's content from a public Run and manager.inspect()."""
    sizes = [int(s) for s in step["layer_sizes"]]
    n_layers = len(sizes) - 1
    act, out_act = str(step["activation"]), str(step["output_activation"])
    sample = step["sample"]
    scale = MagnitudeScale.for_weights([layer["weights"] for layer in step["layers"]])
    layers = [_layer_entry(step, i, scale) for i in range(n_layers)]
    y_hat = as_array(sample["layers"][-1]["a"])
    y = as_array(sample["y"])
    n_batches, batch, rows = int(step["n_batches"]), int(step["batch"]), int(step["batch_size"])
    index = int(sample["index"])

    def vec(label: str, values: Any, n: int, id_: str = "") -> Vector:
        return vector(label, values, n, id_, scale)

    return {
        "run": run,
        "step": step,
        "layers": layers,
        "backward": [entry for entry in reversed(layers) if not entry["output"]],
        "L": n_layers,
        "L_sup": sup("L"),
        "eq": loss_equations(str(step["loss_name"]), out_act),
        "x": vec("x", sample["x"], sizes[0], "inspect-x"),
        "y": vec("y", sample["y"], sizes[-1], "inspect-y"),
        "y_hat": vec("ŷ", y_hat, sizes[-1], "inspect-y-hat"),
        "error": vec("ŷ − y", y_hat - y if y.size == y_hat.size else [], sizes[-1]),
        "loss": render.format_number(step["loss"], 4),
        "loss_exact": repr(step["loss"]),
        "lr": f"{float(step['learning_rate']):g}",
        "optimizer": str(step["optimizer"]),
        "weights_only": step.get("error_propagation") == "weights_only",
        "checks": check_rows(step),
        "chain": safe_chain_rule(step, weight or default_weight(step)),
        "scale": scale,
        "batch": batch,
        "n_batches": n_batches,
        "rows": rows,
        "first_row": int(step["batch_start"]),
        "last_row": int(step["batch_start"]) + rows - 1,
        "sample": index,
        "sample_row": int(sample["row"]),
        "prev_batch": batch - 1 if batch > 0 else None,
        "next_batch": batch + 1 if batch + 1 < n_batches else None,
        "prev_sample": index - 1 if index > 0 else None,
        "next_sample": index + 1 if index + 1 < rows else None,
        "limit": int(step["limit"]),
        "wide": any(entry["truncated"] for entry in layers),
        "bias": step["layers"][0]["biases"] is not None,
        "penalty": any(entry["penalty"] for entry in layers),
        "hidden_derivative": derivative_text(act) if n_layers > 1 else "",
        "apply": None,
    }


def safe_chain_rule(step: dict[str, Any], weight: tuple[int, int, int]) -> ChainRule | None:
    try:
        return chain_rule(step, *weight)
    except ValueError:
        return None


# ---------------------------------------------------------------- routes


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def _weight(request: Request) -> tuple[int, int, int] | None:
    q = request.query_params
    if "layer" not in q:
        return None
    return max(1, _int(q.get("layer"))), _int(q.get("row")), _int(q.get("col"))


async def _context(
    request: Request, run_id: str, batch: int, sample: int, check: bool = True
) -> dict[str, Any]:
    manager = request.app.state.manager
    run = manager.get(run_id).public()
    try:
        step = await manager.inspect(run_id, batch, sample, check=check)
        note = ""
    except ProblemError as exc:
        if exc.status_code != 422:
            raise
        # Out of range (e.g. a sample past the end of the shorter last batch): fall back.
        fallback = "its first sample" if exc.field == "sample" else "batch 0"
        note = f"{exc.detail}: showing {fallback} instead"
        step = await manager.inspect(run_id, batch if exc.field == "sample" else 0, 0, check=check)
    return inspect_context(run, step, _weight(request)) | {"note": note}


def _picked(request: Request) -> tuple[int, int]:
    q = request.query_params
    return _int(q.get("batch")), _int(q.get("sample"))


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    templates = request.app.state.ui.templates
    return templates.TemplateResponse(request, name, context, status_code=status)  # type: ignore[no-any-return]


def _missing(request: Request, exc: ProblemError) -> HTMLResponse:
    return _page(request, "partials/control_message.html", {"text": exc.detail, "error": True}, 404)


@router.get("/runs/{run_id}/inspect", response_class=HTMLResponse)
async def inspect_page(request: Request, run_id: str) -> HTMLResponse:
    try:
        context = await _context(request, run_id, *_picked(request))
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
        context = await _context(request, run_id, *_picked(request))
    except ProblemError as exc:
        return _missing(request, exc)
    return _page(request, "partials/inspect_content.html", context)


@router.get("/ui/runs/{run_id}/inspect/chain", response_class=HTMLResponse)
async def inspect_chain(request: Request, run_id: str) -> HTMLResponse:
    """One weight's chain rule (the page's click on a cell of ∂E/∂W)."""
    try:
        # the chain rule needs the step's numbers, not its gradient check
        context = await _context(request, run_id, *_picked(request), check=False)
    except ProblemError as exc:
        return _missing(request, exc)
    if context["chain"] is None:
        context["chain_error"] = "That weight is not on this page."
    return _page(request, "partials/inspect_chain.html", context)


@router.post("/ui/runs/{run_id}/inspect/apply", response_class=HTMLResponse)
async def inspect_apply(request: Request, run_id: str) -> HTMLResponse:
    """Take the shown step, then show the inspector again from the new weights."""
    form = await request.form()
    batch, sample = _int(str(form.get("batch", 0))), _int(str(form.get("sample", 0)))
    manager = request.app.state.manager
    before = None
    try:
        before = (await manager.inspect(run_id, batch, sample, check=False))["loss"]
        await apply_step(manager, run_id, batch)
        message, error = "", False
    except ProblemError as exc:
        if exc.status_code == 404:
            return _missing(request, exc)
        message, error = f"Not applied: {exc.detail}.", True
    try:
        context = await _context(request, run_id, batch, sample)
    except ProblemError as exc:
        return _missing(request, exc)
    if not error:
        message = (
            f"Applied one plain-SGD step on batch {batch}: its loss went from "
            f"{render.format_number(before, 4)} to {context['loss']}."
        )
    return _page(
        request,
        "partials/inspect_content.html",
        context | {"apply": {"text": message, "error": error}},
    )

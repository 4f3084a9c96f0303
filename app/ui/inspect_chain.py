# ruff: noqa: RUF001, RUF002, RUF003 -- UI text uses real math typography
"""One weight's chain rule, written out with the run's numbers (the article's figures
2.3–2.5), and the gradient check's rows with a verdict in words.

Pure functions of ``RunManager.inspect``'s dict. For w⁽ˡ⁾ᵢⱼ and the selected sample:
∂E/∂w⁽ˡ⁾ᵢⱼ = ∂E/∂a⁽ˡ⁾ᵢ · ∂a⁽ˡ⁾ᵢ/∂z⁽ˡ⁾ᵢ · ∂z⁽ˡ⁾ᵢ/∂w⁽ˡ⁾ᵢⱼ, where ∂z/∂w = a⁽ˡ⁻¹⁾ⱼ,
∂a/∂z = f′(z⁽ˡ⁾ᵢ) from ``app.nn``'s activation registry, and ∂E/∂a⁽ˡ⁾ᵢ is
Σₖ W⁽ˡ⁺¹⁾ₖᵢ δ⁽ˡ⁺¹⁾ₖ for a hidden layer, 2(ŷᵢ − yᵢ)/(n·k) for mse at the output. With
cross-entropy on a sigmoid/softmax output the first two factors fuse into
δ⁽ᴸ⁾ᵢ = (ŷᵢ − yᵢ)/n. The batch's value is the sum of these terms over its n samples
(δ carries the 1/n, so it is the mean of the per-sample gradients).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.nn.activations import ACTIVATIONS
from app.nn.losses import fused_delta
from app.ui.inspect_tables import as_array

SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
SUPERSCRIPTS = str.maketrans("0123456789L", "⁰¹²³⁴⁵⁶⁷⁸⁹ᴸ")
PRIMES = {"sigmoid": "σ′", "tanh": "tanh′", "relu": "ReLU′", "leaky_relu": "LeakyReLU′"}
TERMS_SHOWN = 6  # terms of Σₖ written out before "…"

# Verdicts (documented in the README): the central difference in float64 with
# h = 1e-6·|w| has a truncation error ~h² and a rounding error ~1e-16·E/h ≈ 1e-10·E,
# so a correct gradient of ordinary size agrees to ~1e-8 relative.
AGREES, CLOSE = 1e-6, 1e-4
TOO_SMALL = 1e-8  # max(|g|, |n|) below this × E: rounding is over 1 % of it


def sub(*indices: int) -> str:
    """Subscript indices: (1, 0) -> '₁₀', (12, 3) -> '₁₂,₃'."""
    parts = [str(i).translate(SUBSCRIPTS) for i in indices]
    return ("," if any(i > 9 for i in indices) else "").join(parts)


def sup(layer: int | str) -> str:
    return f"⁽{str(layer).translate(SUPERSCRIPTS)}⁾"


def num(v: float) -> str:
    """4 significant digits with a real minus sign."""
    return f"{v:.4g}".replace("-", "−") if math.isfinite(v) else "—"


def verdict(g: float | None, n: float | None, r: float | None, loss: float | None) -> str:
    """'agrees' (r < 1e-6), 'close' (r < 1e-4), 'disagrees', or 'too small to tell'."""
    if g is None or n is None or r is None:
        return "not finite"
    if r < AGREES:
        return "agrees"
    scale = abs(loss) if loss is not None and math.isfinite(loss) else 1.0
    if max(abs(g), abs(n)) < TOO_SMALL * scale:
        return "too small to tell"
    return "close" if r < CLOSE else "disagrees"


@dataclass(frozen=True)
class CheckRow:
    layer: int
    row: int
    col: int
    weight: str
    backprop: str
    numerical: str
    relative_error: str
    verdict: str


def check_rows(step: dict[str, Any]) -> dict[int, list[CheckRow]]:
    """The gradient check's rows by layer (1-based), in the API's order."""
    out: dict[int, list[CheckRow]] = {}
    for c in step.get("gradient_check") or []:
        g, n, r = c["backprop"], c["numerical"], c["relative_error"]
        out.setdefault(int(c["layer"]), []).append(
            CheckRow(
                int(c["layer"]),
                int(c["row"]),
                int(c["col"]),
                f"w{sup(c['layer'])}{sub(c['row'], c['col'])}",
                "—" if g is None else f"{g:.10g}",
                "—" if n is None else f"{n:.10g}",
                "—" if r is None else f"{r:.1e}",
                verdict(g, n, r, step.get("loss")),
            )
        )
    return out


@dataclass(frozen=True)
class Factor:
    symbol: str  # e.g. "∂E/∂a⁽¹⁾₂"
    value: float
    how: str  # how the value comes about, with the numbers
    meaning: str = ""  # what the symbol stands for, e.g. "Σₖ W⁽²⁾ₖ₂ δ⁽²⁾ₖ"

    @property
    def text(self) -> str:
        return num(self.value)

    @property
    def exact(self) -> str:
        return repr(self.value)


@dataclass
class ChainRule:
    """``factors`` multiply out to ``contribution``: this sample's term of ∂E/∂w."""

    layer: int
    row: int
    col: int
    weight: str
    factors: list[Factor]
    contribution: float
    batch_value: float | None
    n: int
    sample: int
    fused: bool
    complete: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def rule_text(self) -> str:
        """'∂E/∂a⁽¹⁾₂ · ∂a⁽¹⁾₂/∂z⁽¹⁾₂ · ∂z⁽¹⁾₂/∂w⁽¹⁾₂₀'."""
        return " · ".join(f.symbol for f in self.factors)

    @property
    def product_text(self) -> str:
        return " · ".join(f"({num(f.value)})" for f in self.factors)

    @property
    def contribution_text(self) -> str:
        return num(self.contribution)

    @property
    def batch_text(self) -> str:
        return "—" if self.batch_value is None else f"{self.batch_value:.6g}".replace("-", "−")


def _prime(activation: str, z: float, a: float) -> tuple[float, str]:
    """f′(z) from app.nn's registry, and how it is taken."""
    value = float(ACTIVATIONS[activation].df(np.array([[z]]), np.array([[a]]))[0, 0])
    how = {
        "sigmoid": f"a(1 − a) = {num(a)}·(1 − {num(a)})",
        "tanh": f"1 − a² = 1 − {num(a)}²",
        "relu": f"1 if z > 0 else 0, z = {num(z)}",
        "leaky_relu": f"1 if z > 0 else 0.01, z = {num(z)}",
        "linear": "1",
    }[activation]
    return value, f"{PRIMES.get(activation, 'id′')}(z) = {how}"


def _output_factors(step: dict[str, Any], i: int, n: int) -> tuple[list[Factor], bool]:
    out_act, loss = str(step["output_activation"]), str(step["loss_name"])
    s_out = step["sample"]["layers"][-1]
    y_hat, y = as_array(s_out["a"]), as_array(step["sample"]["y"])
    k, L = y_hat.size, sup(len(step["layers"]))
    if fused_delta(loss, out_act):
        d = float((y_hat[i] - y[i]) / n)
        how = f"(ŷ{sub(i)} − y{sub(i)})/n = ({num(y_hat[i])} − {num(y[i])})/{n}"
        return [Factor(f"∂E/∂z{L}{sub(i)}", d, how, f"δ{L}{sub(i)}")], True
    de_da = 2.0 * (y_hat - y) / (n * k)
    how_e = f"2(ŷ{sub(i)} − y{sub(i)})/(n·k) = 2·({num(y_hat[i])} − {num(y[i])})/({n}·{k})"
    if out_act == "softmax":  # δᵢ = aᵢ (gᵢ − Σₖ gₖ aₖ): the softmax Jacobian
        inner = float(de_da[i] - np.dot(de_da, y_hat))
        return [
            Factor(
                f"∂E/∂a{L}{sub(i)} − Σₖ ∂E/∂a{L}ₖ a{L}ₖ",
                inner,
                f"with ∂E/∂a{L}{sub(i)} = " + how_e,
                "the softmax Jacobian's first factor",
            ),
            Factor(f"a{L}{sub(i)}", float(y_hat[i]), f"ŷ{sub(i)}", "its second factor"),
        ], False
    z = float(as_array(s_out["z"])[i])
    df, how_df = _prime(out_act, z, float(y_hat[i]))
    return [
        Factor(f"∂E/∂a{L}{sub(i)}", float(de_da[i]), how_e),
        Factor(f"∂a{L}{sub(i)}/∂z{L}{sub(i)}", df, how_df),
    ], False


def _hidden_factors(step: dict[str, Any], l_: int, i: int) -> tuple[list[Factor], bool]:
    s_layers, nxt = step["sample"]["layers"], step["layers"][l_]
    w_next = as_array(nxt["weights"])  # (n_{l+1}, n_l), maybe cut
    d_next = as_array(s_layers[l_]["delta"])
    m = min(d_next.size, w_next.shape[0])
    terms = w_next[:m, i] * d_next[:m]
    up, here = sup(l_ + 1), sup(l_)
    pairs = zip(w_next[: min(m, TERMS_SHOWN), i], d_next, strict=False)
    shown = " + ".join(f"({num(w)})({num(d)})" for w, d in pairs)
    if m > TERMS_SHOWN:
        shown += f" + … ({m} terms)"
    z = float(as_array(s_layers[l_ - 1]["z"])[i])
    a = float(as_array(s_layers[l_ - 1]["a"])[i])
    df, how_df = _prime(str(step["activation"]), z, a)
    return [
        Factor(f"∂E/∂a{here}{sub(i)}", float(terms.sum()), shown, f"Σₖ W{up}ₖ{sub(i)} δ{up}ₖ"),
        Factor(f"∂a{here}{sub(i)}/∂z{here}{sub(i)}", df, how_df),
    ], m == int(nxt["n_out"])


def chain_rule(step: dict[str, Any], layer: int, row: int, col: int) -> ChainRule:
    """The chain rule of w⁽layer⁾[row, col] (layer 1-based) for ``step``'s sample.

    ValueError when the weight is not on the page (out of range or cut off).
    """
    layers = step["layers"]
    if not 1 <= layer <= len(layers):
        raise ValueError(f"layer must be in 1-{len(layers)}")
    w = as_array(layers[layer - 1]["weights"])
    if not (0 <= row < w.shape[0] and 0 <= col < w.shape[1]):
        raise ValueError(f"row and col must be within the {w.shape[0]}×{w.shape[1]} shown")
    n = int(step["batch_size"])
    sample = step["sample"]
    fused, complete = False, True
    if layer == len(layers):
        factors, fused = _output_factors(step, row, n)
    else:
        factors, complete = _hidden_factors(step, layer, row)
    a_in = sample["features"] if layer == 1 and sample.get("features") else sample["x"]
    prev = as_array(a_in if layer == 1 else sample["layers"][layer - 2]["a"])
    here, before = sup(layer), sup(layer - 1)
    factors.append(
        Factor(
            f"∂z{here}{sub(row)}/∂w{here}{sub(row, col)}",
            float(prev[col]),
            "",
            f"a{before}{sub(col)}, the input this weight multiplies",
        )
    )
    nabla = as_array(layers[layer - 1]["nabla_w"])
    rule = ChainRule(
        layer,
        row,
        col,
        f"w{here}{sub(row, col)}",
        factors,
        float(np.prod([f.value for f in factors])),
        float(nabla[row, col]) if nabla.size else None,
        n,
        int(sample["index"]),
        fused,
        complete,
    )
    if not complete:
        rule.notes.append(
            f"The layer above has {layers[layer]['n_out']} units; this page holds the first "
            f"{int(step['limit'])}, so the sum (and the product) leaves the rest out."
        )
    return rule

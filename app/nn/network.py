"""A multi-layer perceptron as a list of weight matrices (after Nielsen's network.py).

Layer l maps a_prev (n, n_in) to z = a_prev @ W.T + b, a = f(z), with W of
shape (n_out, n_in) and b of shape (n_out,). Hidden layers share one
activation; the last layer has ``output_activation``.

All parameters live in one flat buffer ``params`` (every weight matrix, then
every bias vector); ``weights`` and ``biases`` are views into it, so an
optimizer can update everything with a few whole-buffer operations. Update
them in place (``w[...] = new``), never by rebinding the list items.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from app.nn.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS, get_activation
from app.nn.losses import loss_value, output_delta

Array = NDArray[np.floating]

INITS = ("xavier", "he", "uniform", "normal")
DTYPES = ("float32", "float64")
ERROR_PROPAGATIONS = ("chain_rule", "weights_only")
WEIGHTS_ONLY_OUTPUTS = ("sigmoid", "linear")


def error_propagation_problem(error_propagation: str, loss: str, output_activation: str) -> str:
    """Why this error propagation cannot train this head, in plain words ("" if it can).

    ``weights_only`` starts from dE/da of the output, which is only defined here
    for mse, and is meant for the article's sigmoid (or a linear) output.
    """
    if error_propagation not in ERROR_PROPAGATIONS:
        return f"must be one of {list(ERROR_PROPAGATIONS)}, got {error_propagation!r}"
    if error_propagation == "weights_only" and (
        loss != "mse" or output_activation not in WEIGHTS_ONLY_OUTPUTS
    ):
        return (
            "weights_only needs the mse loss and a sigmoid or linear output, "
            f"not loss {loss} with a {output_activation} output"
        )
    return ""


@dataclass
class Gradients:
    """One backward pass over a batch of n samples (L layers).

    loss: the batch-mean loss (no l1/l2 terms).
    nabla_w[l]: dE/dW_l, (n_out, n_in); nabla_b[l]: dE/db_l, (n_out,), None without biases.
    deltas[l]: dE/dz_l, (n, n_out) (with ``weights_only``: e_l ⊙ f'(z_l), see ``MLP.backward``).
    zs[l]: pre-activations (n, n_out); activations[0] = x, activations[l + 1] = f(zs[l]).
    """

    loss: float
    nabla_w: list[Array]
    nabla_b: list[Array] | None
    deltas: list[Array]
    zs: list[Array]
    activations: list[Array]


def layout(layer_sizes: Sequence[int], use_bias: bool) -> list[tuple[int, int]]:
    """(offset, size) of each weight matrix, then each bias vector, in the flat buffer."""
    spans: list[tuple[int, int]] = []
    offset = 0
    pairs = list(itertools.pairwise(layer_sizes))
    for n_in, n_out in pairs:
        spans.append((offset, n_in * n_out))
        offset += n_in * n_out
    if use_bias:
        for _, n_out in pairs:
            spans.append((offset, n_out))
            offset += n_out
    return spans


def param_views(
    flat: NDArray[Any], layer_sizes: Sequence[int], use_bias: bool
) -> tuple[list[Array], list[Array] | None]:
    """Weight (n_out, n_in) and bias (n_out,) views into a flat parameter-shaped buffer."""
    spans = layout(layer_sizes, use_bias)
    n_layers = len(layer_sizes) - 1
    weights = [
        flat[o : o + s].reshape(layer_sizes[i + 1], layer_sizes[i])
        for i, (o, s) in enumerate(spans[:n_layers])
    ]
    biases = [flat[o : o + s] for o, s in spans[n_layers:]] if use_bias else None
    return weights, biases


def count_params(layer_sizes: Sequence[int], use_bias: bool) -> int:
    """Weights plus biases of a network with these layer sizes."""
    pairs = itertools.pairwise(layer_sizes)
    return sum(n_in * n_out + (n_out if use_bias else 0) for n_in, n_out in pairs)


def _init_weight(init: str, n_in: int, n_out: int, rng: np.random.Generator) -> NDArray[np.float64]:
    if init == "xavier":
        bound = np.sqrt(6.0 / (n_in + n_out))
        return rng.uniform(-bound, bound, size=(n_out, n_in))
    if init == "he":
        return rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_out, n_in))
    if init == "uniform":
        bound = 1.0 / np.sqrt(n_in)
        return rng.uniform(-bound, bound, size=(n_out, n_in))
    if init == "normal":
        return rng.normal(0.0, 0.1, size=(n_out, n_in))
    raise ValueError(f"unknown init {init!r}; expected one of {list(INITS)}")


class MLP:
    """Fully connected network; see the module docstring for conventions."""

    def __init__(
        self,
        layer_sizes: Sequence[int],
        *,
        activation: str,
        output_activation: str,
        use_bias: bool,
        dtype: DTypeLike = np.float64,
    ) -> None:
        """A network with all-zero parameters (use ``initialise`` for a random one)."""
        sizes = [int(s) for s in layer_sizes]
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(f"layer_sizes must be >= 2 positive ints, got {list(layer_sizes)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of {[*ACTIVATIONS]}")
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"unknown output_activation {output_activation!r}; "
                f"expected one of {list(OUTPUT_ACTIVATIONS)}"
            )
        self.dtype: np.dtype[Any] = np.dtype(dtype)
        if self.dtype.name not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {self.dtype.name}")
        self.layer_sizes = sizes
        self.activation = activation
        self.output_activation = output_activation
        self.use_bias = bool(use_bias)
        self.n_params = count_params(sizes, self.use_bias)
        self.params: Array = np.zeros(self.n_params, dtype=self.dtype)
        self.weights, self.biases = param_views(self.params, sizes, self.use_bias)
        self.n_weights = sum(w.size for w in self.weights)

    @classmethod
    def initialise(
        cls,
        layer_sizes: Sequence[int],
        *,
        activation: str,
        output_activation: str,
        use_bias: bool,
        init: str,
        rng: np.random.Generator,
        dtype: DTypeLike = np.float64,
    ) -> MLP:
        """Random weights per API.md (``init`` in xavier/he/uniform/normal), zero biases.

        The weights are drawn in float64 layer by layer from ``rng`` and then cast,
        so float32 and float64 networks from the same seed agree to rounding.
        """
        net = cls(
            layer_sizes,
            activation=activation,
            output_activation=output_activation,
            use_bias=use_bias,
            dtype=dtype,
        )
        for w, (n_in, n_out) in zip(
            net.weights, zip(net.layer_sizes[:-1], net.layer_sizes[1:], strict=True), strict=True
        ):
            w[...] = _init_weight(init, n_in, n_out, rng)
        return net

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    def _act(self, layer: int) -> str:
        return self.output_activation if layer == self.n_layers - 1 else self.activation

    def _as_input(self, x: NDArray[np.floating] | Sequence[Sequence[float]]) -> Array:
        arr = np.asarray(x, dtype=self.dtype)
        if arr.ndim != 2 or arr.shape[1] != self.layer_sizes[0]:
            raise ValueError(f"x must have shape (n, {self.layer_sizes[0]}), got {arr.shape}")
        return arr

    def forward(self, x: NDArray[np.floating] | Sequence[Sequence[float]]) -> Array:
        """Outputs (n, n_out) of inputs x (n, n_in)."""
        a = self._as_input(x)
        for layer, w in enumerate(self.weights):
            z = a @ w.T
            if self.biases is not None:
                z += self.biases[layer]
            a = get_activation(self._act(layer)).f(z, z)
        return a

    predict = forward

    def forward_trace(
        self, x: NDArray[np.floating] | Sequence[Sequence[float]]
    ) -> tuple[list[Array], list[Array]]:
        """(zs, activations): zs[l] (n, n_l); activations[0] = x, activations[l+1] = f(zs[l])."""
        a = self._as_input(x)
        zs: list[Array] = []
        activations: list[Array] = [a]
        for layer, w in enumerate(self.weights):
            z = a @ w.T
            if self.biases is not None:
                z += self.biases[layer]
            a = get_activation(self._act(layer)).f(z, None)
            zs.append(z)
            activations.append(a)
        return zs, activations

    def backward(
        self,
        x: NDArray[np.floating] | Sequence[Sequence[float]],
        y_target: NDArray[np.floating],
        loss: str,
        error_propagation: str = "chain_rule",
    ) -> Gradients:
        """Gradients of the batch-mean ``loss`` (no l1/l2) for x (n, n_in), y_target (n, n_out).

        ``y_target`` is dense: one-hot for k classes, the 0/1 label for binary.
        With ``error_propagation="weights_only"`` (API.md "The article's shortcut";
        mse with a sigmoid or linear output only) the errors go back through the
        weights alone: e_L = dE/da_L, e_l = e_(l+1) W_(l+1), and every layer's
        delta is e_l ⊙ f'(z_l); ``nabla_w``/``nabla_b`` are then built from those
        deltas in the same way (they are not the gradient for hidden layers).
        """
        problem = error_propagation_problem(error_propagation, loss, self.output_activation)
        if problem:
            raise ValueError(f"error_propagation: {problem}")
        zs, activations = self.forward_trace(x)
        target = np.asarray(y_target, dtype=self.dtype)
        weights_only = error_propagation == "weights_only"
        # The output layer's delta is the chain rule's with either method.
        delta = output_delta(loss, self.output_activation, zs[-1], activations[-1], target)
        if weights_only:  # mse: e_L = dE/da_L, as output_delta computes it before f'
            error = (activations[-1] - target) * (2.0 / (target.shape[0] * target.shape[1]))
        deltas: list[Array] = [delta]
        nabla_w: list[Array] = [delta.T @ activations[-2]]
        nabla_b: list[Array] = [delta.sum(axis=0)]
        act = get_activation(self.activation)
        for layer in range(self.n_layers - 2, -1, -1):
            df = act.df(zs[layer], activations[layer + 1])
            if weights_only:
                error = error @ self.weights[layer + 1]
                delta = error * df
            else:
                delta = (delta @ self.weights[layer + 1]) * df
            deltas.insert(0, delta)
            nabla_w.insert(0, delta.T @ activations[layer])
            nabla_b.insert(0, delta.sum(axis=0))
        return Gradients(
            loss=loss_value(loss, activations[-1], target),
            nabla_w=nabla_w,
            nabla_b=nabla_b if self.use_bias else None,
            deltas=deltas,
            zs=zs,
            activations=activations,
        )

    def copy(self, dtype: DTypeLike | None = None) -> MLP:
        """An independent network with the same parameters (cast to `dtype` if given:
        float32 weights cast to float64 exactly)."""
        net = MLP(
            self.layer_sizes,
            activation=self.activation,
            output_activation=self.output_activation,
            use_bias=self.use_bias,
            dtype=self.dtype if dtype is None else dtype,
        )
        net.params[...] = self.params
        return net

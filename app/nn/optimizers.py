"""Optimizers with PyTorch semantics, updating parameter arrays in place.

``step(params, grads, lr)`` takes matching sequences of arrays (the trainer
passes one flat buffer each) and applies, per array p with gradient g:

- ``sgd``:      p -= lr·g                                   (torch.optim.SGD)
- ``momentum``: v = m·v + g;  p -= lr·v                     (torch.optim.SGD(momentum=m))
- ``adam``:     torch.optim.Adam, betas (0.9, 0.999), eps 1e-8, with its bias
  correction computed in Python floats from the step count, in the same order.

l1/l2 are not the optimizer's business: the caller adds them to ``grads``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]
StateValue = Array | int

OPTIMIZERS = ("sgd", "momentum", "adam")


class Optimizer(Protocol):
    name: str

    def step(self, params: Sequence[Array], grads: Sequence[Array], lr: float) -> None: ...

    def state_dict(self) -> dict[str, StateValue]: ...

    def load_state_dict(self, state: dict[str, StateValue]) -> None: ...


def _scratch(store: list[Array], params: Sequence[Array]) -> list[Array]:
    if len(store) != len(params) or any(
        s.shape != p.shape or s.dtype != p.dtype for s, p in zip(store, params, strict=True)
    ):
        store[:] = [np.empty_like(p) for p in params]
    return store


class SGD:
    name = "sgd"

    def __init__(self) -> None:
        self._tmp: list[Array] = []

    def step(self, params: Sequence[Array], grads: Sequence[Array], lr: float) -> None:
        if lr == 1.0:  # the trainer folds lr into the gradients: skip a multiplication by 1
            for p, g in zip(params, grads, strict=True):
                np.subtract(p, g, out=p)
            return
        for p, g, tmp in zip(params, grads, _scratch(self._tmp, params), strict=True):
            np.multiply(g, lr, out=tmp)
            p -= tmp

    def state_dict(self) -> dict[str, StateValue]:
        return {}

    def load_state_dict(self, state: dict[str, StateValue]) -> None:
        return None


def _arrays(state: dict[str, StateValue], prefix: str) -> list[Array]:
    out: list[Array] = []
    while True:
        value = state.get(f"{prefix}.{len(out)}")
        if not isinstance(value, np.ndarray):
            return out
        out.append(value.copy())


class Momentum:
    name = "momentum"

    def __init__(self, momentum: float = 0.9) -> None:
        self.momentum = float(momentum)
        self.velocity: list[Array] = []
        self._tmp: list[Array] = []

    def step(self, params: Sequence[Array], grads: Sequence[Array], lr: float) -> None:
        if not self.velocity:
            self.velocity = [np.zeros_like(p) for p in params]
        tmps = _scratch(self._tmp, params)
        for p, g, v, tmp in zip(params, grads, self.velocity, tmps, strict=True):
            v *= self.momentum
            v += g
            np.multiply(v, lr, out=tmp)
            p -= tmp

    def state_dict(self) -> dict[str, StateValue]:
        return {f"velocity.{i}": v.copy() for i, v in enumerate(self.velocity)}

    def load_state_dict(self, state: dict[str, StateValue]) -> None:
        self.velocity = _arrays(state, "velocity")


class Adam:
    name = "adam"

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0
        self.m: list[Array] = []
        self.v: list[Array] = []
        self._tmp: list[Array] = []

    def step(self, params: Sequence[Array], grads: Sequence[Array], lr: float) -> None:
        if not self.m:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        bias_correction1 = 1 - b1**self.t
        bias_correction2_sqrt = (1 - b2**self.t) ** 0.5
        step_size = lr / bias_correction1
        tmps = _scratch(self._tmp, params)
        for p, g, m, v, tmp in zip(params, grads, self.m, self.v, tmps, strict=True):
            # m.lerp_(g, 1 - b1)
            np.subtract(g, m, out=tmp)
            tmp *= 1 - b1
            m += tmp
            # v.mul_(b2).addcmul_(g, g, value=1 - b2)
            v *= b2
            np.multiply(g, g, out=tmp)
            tmp *= 1 - b2
            v += tmp
            # denom = v.sqrt() / bc2_sqrt + eps;  p.addcdiv_(m, denom, value=-step_size)
            np.sqrt(v, out=tmp)
            tmp /= bias_correction2_sqrt
            tmp += self.eps
            np.divide(m, tmp, out=tmp)
            tmp *= step_size
            p -= tmp

    def state_dict(self) -> dict[str, StateValue]:
        state: dict[str, StateValue] = {"t": self.t}
        state.update({f"m.{i}": m.copy() for i, m in enumerate(self.m)})
        state.update({f"v.{i}": v.copy() for i, v in enumerate(self.v)})
        return state

    def load_state_dict(self, state: dict[str, StateValue]) -> None:
        t = state.get("t", 0)
        self.t = int(t) if not isinstance(t, np.ndarray) else int(t.item())
        self.m = _arrays(state, "m")
        self.v = _arrays(state, "v")


def make_optimizer(name: str, *, momentum: float = 0.9) -> Optimizer:
    """``sgd``, ``momentum`` (uses ``momentum``) or ``adam``; ValueError otherwise."""
    if name == "sgd":
        return SGD()
    if name == "momentum":
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        return Momentum(momentum)
    if name == "adam":
        return Adam()
    raise ValueError(f"unknown optimizer {name!r}; expected one of {list(OPTIMIZERS)}")

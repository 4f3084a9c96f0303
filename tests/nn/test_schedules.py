"""Learning-rate schedules: closed forms written here, and PyTorch's schedulers when
torch is installed (the bench environment)."""

from __future__ import annotations

import math

import pytest

from app.nn.schedules import scheduled_rate

CASES = [
    ({"kind": "step", "step_size": 3, "gamma": 0.5}, lambda e: 0.1 * 0.5 ** ((e - 1) // 3)),
    ({"kind": "exponential", "gamma": 0.9}, lambda e: 0.1 * 0.9 ** (e - 1)),
    (
        {"kind": "cosine", "period": 7, "min_lr": 0.01},
        lambda e: 0.01 + (0.1 - 0.01) * (1 + math.cos(math.pi * (e - 1) / 7)) / 2,
    ),
]


@pytest.mark.parametrize(("schedule", "expected"), CASES)
def test_schedules_follow_their_closed_forms(schedule: dict, expected: object) -> None:
    for epoch in range(1, 20):
        assert scheduled_rate(epoch, 0.1, schedule) == pytest.approx(expected(epoch), rel=1e-15)  # type: ignore[operator]
    assert scheduled_rate(5, 0.1, None) == 0.1


@pytest.mark.parametrize(("schedule", "expected"), CASES)
def test_schedules_match_pytorch_stepped_once_per_epoch(schedule: dict, expected: object) -> None:
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    kind = schedule["kind"]
    if kind == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, schedule["step_size"], schedule["gamma"])
    elif kind == "exponential":
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, schedule["gamma"])
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=schedule["period"], eta_min=schedule["min_lr"]
        )
    for epoch in range(1, 20):
        # PyTorch's rate for this epoch is the one set before its optimizer steps.
        torch_rate = opt.param_groups[0]["lr"]
        if kind == "cosine":  # the recursive form drifts past T_max; compare the closed one
            torch_rate = sched._get_closed_form_lr()[0]
        assert scheduled_rate(epoch, 0.1, schedule) == pytest.approx(torch_rate, rel=1e-9)
        opt.step()
        sched.step()

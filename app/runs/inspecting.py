# ruff: noqa: RUF002 -- real math typography (minus sign, Greek letters)
"""The inspector's one write: take the shown plain-SGD step (API extra
`POST /api/runs/{id}/inspect/apply`, the page's "Apply this step").

The step is `app.runs.step_inspector`'s, on the whole batch in the run's dtype:
W − α·(∂E/∂W + l2·W + l1·sign(W)), b − α·∂E/∂b. It is written with
`RunManager.put_weights`, so PUT /weights' rules hold: refused (409) while the run
trains; epoch, metrics and optimizer state stay; durable; subscribers see it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from app.runs.errors import ProblemError
from app.runs.models import RunStatus
from app.runs.step_inspector import stepped_layers

if TYPE_CHECKING:
    from app.runs.manager import RunManager

RUNNING_MESSAGE = "stop the run before applying a step: its weights change while it trains"


async def apply_step(manager: RunManager, run_id: str, batch: int) -> dict[str, Any]:
    """Apply the inspector's step on batch ``batch`` → the new /weights body.

    ProblemError 404 (no run), 409 (running), 422 naming ``batch``.
    """
    if manager.get(run_id).status == RunStatus.running:
        raise ProblemError(409, RUNNING_MESSAGE, "status")
    layers = await asyncio.to_thread(stepped_layers, manager.step_inputs(run_id), batch)
    await manager.put_weights(run_id, layers)
    return manager.weights(run_id)

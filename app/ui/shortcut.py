"""The article's shortcut, compared: one click makes two new runs of a run's settings,
one trained by the chain rule and one by the shortcut (errors passed back through the
weights alone), starts both and shows them side by side on /compare."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.runs.errors import ProblemError
from app.runs.models import RunPatch

router = APIRouter(include_in_schema=False)

METHODS = (("chain_rule", "chain rule"), ("weights_only", "the shortcut"))


def _message(request: Request, text: str) -> HTMLResponse:
    return request.app.state.ui.templates.TemplateResponse(  # type: ignore[no-any-return]
        request, "partials/control_message.html", {"text": text, "error": True}
    )


@router.post("/ui/runs/{run_id}/compare-shortcut", response_model=None)
async def compare_shortcut(request: Request, run_id: str) -> Response:
    """Two copies of the run's settings and data from epoch 0, by each method; then /compare."""
    manager: Any = request.app.state.manager
    made: list[str] = []
    try:
        name = manager.get(run_id).name
        for method, words in METHODS:
            copy = await manager.duplicate(run_id)
            made.append(copy.id)
            await manager.reset(copy.id)  # from the seed's (or its own) weights, epoch 0
            body = {"error_propagation": method, "name": f"{name} · {words}"[:80]}
            await manager.patch(copy.id, RunPatch.model_validate(body))
    except ProblemError as exc:
        for made_id in made:
            with contextlib.suppress(ProblemError):
                await manager.delete(made_id)
        return _message(request, exc.detail)
    for made_id in made:  # both train at once when there are slots; else they wait to start
        with contextlib.suppress(ProblemError):
            await manager.start(made_id)
    return Response(status_code=200, headers={"HX-Redirect": f"/compare?runs={','.join(made)}"})

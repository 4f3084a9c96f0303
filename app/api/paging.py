"""Pages of the lists that grow (README "How we read the contract"): runs and metrics.

`GET /api/runs?limit=N&before=ID`: newest first, the runs after run ID in that
order, at most N; `next_before` is the id to pass for the next page, null on the
last. Without `limit` every run comes back, as in v1 (the server keeps at most
`max_stored_runs`). `GET /metrics?since=E&limit=N`: the first N epochs after E.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from app.runs import ProblemError
from app.runs.models import RunView

MAX_PAGE = 1000
T = TypeVar("T")


def page_of_runs(
    views: Sequence[RunView], limit: int | None, before: str | None
) -> tuple[list[RunView], str | None]:
    """The page of `views` (newest first) after run `before`, at most `limit` long, and
    the cursor of the next page (None when nothing follows)."""
    start = 0
    if before is not None:
        ids = [view.id for view in views]
        if before not in ids:
            raise ProblemError(
                422,
                f"before: no run with id {before!r} (deleted? start again without `before`)",
                "before",
            )
        start = ids.index(before) + 1
    rest = list(views[start:])
    if limit is None or len(rest) <= limit:
        return rest, None
    page = rest[:limit]
    return page, page[-1].id


def first_epochs(metrics: dict[str, list[Any]], limit: int | None) -> dict[str, list[Any]]:
    """The columnar metrics cut to their first `limit` epochs (all of them for None)."""
    if limit is None:
        return metrics
    return {name: column[:limit] for name, column in metrics.items()}

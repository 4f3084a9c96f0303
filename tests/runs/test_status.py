"""The status rules (RunStatus in app.runs.models), each over every status, against a
table written out here from API.md's lifecycle."""

from __future__ import annotations

import pytest

from app.runs.models import RunStatus

# status: (is_active, is_final, needs_reset, can_step)
TABLE = {
    "created": (False, False, False, True),
    "running": (True, False, False, False),
    "stopped": (False, True, False, True),
    "completed": (False, True, False, False),
    "diverged": (False, True, True, False),
    "failed": (False, True, True, False),
    "interrupted": (False, True, False, True),
    "queued": (True, False, False, False),
}
# status: (can start with epochs left, can start at its last epoch)
STARTS = {
    "created": (True, True),
    "running": (False, False),
    "stopped": (True, True),
    "completed": (True, False),
    "diverged": (False, False),
    "failed": (False, False),
    "interrupted": (True, True),
    "queued": (False, False),
}


def test_the_table_covers_every_status() -> None:
    assert set(TABLE) == set(STARTS) == {str(s) for s in RunStatus}


@pytest.mark.parametrize("status", list(RunStatus))
def test_is_active(status: RunStatus) -> None:
    assert status.is_active is TABLE[status][0]


@pytest.mark.parametrize("status", list(RunStatus))
def test_is_final(status: RunStatus) -> None:
    assert status.is_final is TABLE[status][1]


@pytest.mark.parametrize("status", list(RunStatus))
def test_needs_reset(status: RunStatus) -> None:
    assert status.needs_reset is TABLE[status][2]


@pytest.mark.parametrize("status", list(RunStatus))
def test_can_step(status: RunStatus) -> None:
    assert status.can_step is TABLE[status][3]


@pytest.mark.parametrize("status", list(RunStatus))
def test_can_start(status: RunStatus) -> None:
    with_epochs_left, at_last_epoch = STARTS[status]
    assert status.can_start(3, 10) is with_epochs_left
    assert status.can_start(10, 10) is at_last_epoch
    assert status.can_start(0, 0) is at_last_epoch  # no epochs at all: as at the end

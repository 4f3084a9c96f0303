from __future__ import annotations

import pytest

from app.config import Settings


@pytest.fixture
def settings(database: str) -> Settings:
    """A fresh database (tests/conftest.py: SQLite, or PostgreSQL with
    BACKPROP_LIVE_TEST_DB=postgresql); checkpoints on every frame so crash tests need
    no waiting."""
    return Settings.from_env({}, db=database, checkpoint_interval=0.0, max_running_runs=4)

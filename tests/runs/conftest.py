from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fresh database; checkpoints on every frame so crash tests need no waiting."""
    return Settings.from_env(
        {}, db=tmp_path / "runs.db", checkpoint_interval=0.0, max_running_runs=4
    )

"""SQLite persistence of runs, metrics, checkpoints and custom datasets."""

from app.storage.errors import StorageError

__all__ = ["StorageError"]

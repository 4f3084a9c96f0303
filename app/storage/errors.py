"""Storage failures the API maps to 503."""

from __future__ import annotations


class StorageError(RuntimeError):
    """The database cannot be written or read (disk full, read-only file, corruption)."""

"""Run orchestration: the manager, the worker processes, the live hubs.

Only the error types are re-exported here so that importing ``app.runs`` stays
cheap (the worker child imports this package too).
"""

from app.runs.errors import ProblemError
from app.storage.errors import StorageError

__all__ = ["ProblemError", "StorageError"]

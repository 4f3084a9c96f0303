"""Errors the run layer raises for the API to map (kept free of pydantic/numpy imports)."""

from __future__ import annotations


class ProblemError(Exception):
    """A refusal the request schema cannot express: 404, 409 or 422 with a named field.

    Raised by the manager for an unknown run, an action the run's status does not
    allow, too many running runs, and limits that need the dataset (parameters,
    samples, head pairing, custom data, epochs below the current epoch).
    """

    def __init__(self, status_code: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.field = field

    def __repr__(self) -> str:
        return f"ProblemError({self.status_code}, {self.detail!r}, field={self.field!r})"

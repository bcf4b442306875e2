"""Domain errors that services raise and every interface maps the same way."""

from __future__ import annotations

from typing import Any


class Conflict(Exception):
    """The request clashes with the current state (a duplicate, a stale version): HTTP 409."""

    def __init__(self, message: str, *, field: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details if details is not None else ({field: [message]} if field else None)

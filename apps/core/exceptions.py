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


def error_messages(exc: Exception) -> list[str]:
    """A service error as lines for a person: "field: message" per field of a ValidationError,
    the message of a Conflict or PermissionDenied. (The API's JSON form is in apps.core.api.)"""
    from django.core.exceptions import ValidationError

    if isinstance(exc, Conflict):
        return [exc.message]
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return [f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()]
    if isinstance(exc, ValidationError):
        return list(exc.messages)
    return [str(exc)]

from __future__ import annotations


def connect() -> None:
    """Filled in by the app's issue work."""

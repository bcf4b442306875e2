"""Dead letters: points the platform will never take (it rejected them, or every attempt to
deliver them alone failed while the rest of their batch went through). They are parked in a
JSON-lines file next to the buffer, `<buffer path>.dead-letter.jsonl`, one line per point:

    {"time": "2026-11-23T10:00:01+00:00", "reason": "...", "errors": {...} | null, "point": {...}}

so the node's stream goes on and an operator can read, fix and replay them. Nothing is dropped
silently: every parked point is logged at ERROR and raised as a local alert by the gateway.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SUFFIX = ".dead-letter.jsonl"


@dataclass(frozen=True)
class DeadLetter:
    point: Mapping[str, Any]
    reason: str
    errors: Mapping[str, Any] | None = None  # the platform's per-field reasons, when it gave them
    time: datetime = datetime.min.replace(tzinfo=UTC)  # set by park() when left at the default

    def as_json(self) -> str:
        return json.dumps(
            {
                "time": self.time.isoformat(),
                "reason": self.reason,
                "errors": dict(self.errors) if self.errors is not None else None,
                "point": dict(self.point),
            },
            ensure_ascii=True,  # a lone surrogate in a point still makes a valid line
        )


class DeadLetterFile:
    """Append-only; `path` None keeps the letters in memory only (an in-memory buffer)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self.parked = 0
        self.memory: list[DeadLetter] = []
        self._lock = threading.Lock()

    @classmethod
    def beside(cls, buffer_path: str) -> DeadLetterFile:
        return cls(None if buffer_path == ":memory:" else buffer_path + SUFFIX)

    def park(self, letters: list[DeadLetter]) -> list[DeadLetter]:
        """Write `letters` durably (fsync) and return them with their parking time."""
        now = datetime.now(UTC)
        stamped = [
            letter
            if letter.time != DeadLetter.time
            else DeadLetter(letter.point, letter.reason, letter.errors, now)
            for letter in letters
        ]
        with self._lock:
            if self.path is None:
                self.memory.extend(stamped)
            else:
                with open(self.path, "a", encoding="utf-8") as handle:
                    handle.writelines(letter.as_json() + "\n" for letter in stamped)
                    handle.flush()
                    os.fsync(handle.fileno())
            self.parked += len(stamped)
        return stamped

    def read(self) -> list[dict[str, Any]]:
        """Every parked letter, oldest first, as written."""
        if self.path is None:
            return [json.loads(letter.as_json()) for letter in self.memory]
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

"""Store-and-forward buffer: points wait on local disk (SQLite) until the platform has them.

Bounded by `max_points`. When full, the OLDEST points are dropped to make room (the newest
state of a machine matters most for live monitoring and safety); every drop is counted in
`dropped` and logged, never silent. Points are replayed in the order they were buffered.

A cap the gateway could not honour is refused up front (`capacity_problem`): a buffer file that
hits the process's file size limit (`ulimit -f`, systemd's LimitFSIZE=) fails its next write in
the middle of an outage, exactly when the points matter, instead of dropping the oldest.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# what a point takes in the buffer file: {"node", "time"} plus one number per signal, with
# SQLite's row overhead (measured: 257 bytes for a six-signal machine)
POINT_OVERHEAD_BYTES = 64
SIGNAL_BYTES = 32


def point_bytes(signals: int) -> int:
    return POINT_OVERHEAD_BYTES + SIGNAL_BYTES * max(signals, 1)


def file_size_limit() -> int | None:
    """The largest file this process may write (bytes), or None when unlimited."""
    try:
        import resource
    except ImportError:  # no such limit on Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft


def capacity_problem(max_points: int, *, signals: int, limit: int | None) -> str:
    """Why a buffer of `max_points` points of `signals` signals cannot fit a file of at most
    `limit` bytes, or "" when it can."""
    needed = max_points * point_bytes(signals)
    if limit is None or needed <= limit:
        return ""
    return (
        f"buffer.max_points {max_points} lets its buffer grow to about {needed / 1e6:.0f} MB, "
        f"but this gateway may write files of at most {limit / 1e6:.0f} MB (its file size "
        f"limit, ulimit -f); give at most {limit // point_bytes(signals)} points or raise the limit"
    )


class SqliteBuffer:
    def __init__(self, path: str | Path, *, max_points: int = 1_000_000) -> None:
        self.path = str(path)
        self.max_points = max_points
        self.dropped = 0
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS points "
            "(id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)"
        )

    def __len__(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM points").fetchone()
        return int(row[0])

    def append(self, points: list[dict[str, Any]]) -> None:
        if not points:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO points (body) VALUES (?)", [(json.dumps(p),) for p in points]
            )
            count = int(self._db.execute("SELECT count(*) FROM points").fetchone()[0])
            excess = count - self.max_points
            if excess > 0:
                self._db.execute(
                    "DELETE FROM points WHERE id IN (SELECT id FROM points ORDER BY id LIMIT ?)",
                    (excess,),
                )
                self.dropped += excess
            self._db.execute("COMMIT")
        if excess > 0:
            logger.warning(
                "Buffer full (%d points): dropped the %d oldest", self.max_points, excess
            )

    def peek(self, limit: int, *, up_to: int | None = None) -> tuple[int, list[dict[str, Any]]]:
        """The oldest `limit` points (with ids <= `up_to`, when given) and the id to acknowledge
        them with (0 when empty)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, body FROM points WHERE id <= ? ORDER BY id LIMIT ?",
                (up_to if up_to is not None else 2**63 - 1, limit),
            ).fetchall()
        if not rows:
            return 0, []
        return int(rows[-1][0]), [json.loads(body) for _, body in rows]

    def last_id(self) -> int:
        """The id of the newest buffered point (0 when empty): `peek(up_to=...)` then sends
        what was buffered at this moment and nothing that arrives while it is being sent."""
        with self._lock:
            row = self._db.execute("SELECT max(id) FROM points").fetchone()
        return int(row[0] or 0)

    def ack(self, up_to_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM points WHERE id <= ?", (up_to_id,))

    def close(self) -> None:
        with self._lock:
            self._db.close()

"""What runs after a batch is stored: the receivers of `telemetry_ingested` (threshold rules,
a node's loaded material, a battery's charge), told each request's newest point per node.

With TELEMETRY_RECEIVERS_IN_BACKGROUND (on by default with PostgreSQL) they run in a thread of
the ingest process, beside the request instead of inside it: a gateway's request ends when its
points are stored, and the rules' transaction (lock the node's signal states, update them,
maybe open an alert) no longer adds its round trips to every request (issue 19: they were ~40%
of a 100-point batch). The thread keeps the newest point of each node and tells the receivers
one node after another; while it is busy, later requests of a node replace that node's waiting
point, so a flood of small requests costs one evaluation per node per round, not one each.
Rules judge durations by the points' own times, so a skipped in-between reading changes no
outcome that a reading of each request would have had, except a level that came and went
entirely between two evaluations.

Off (SQLite, the embedded default, where a second writer thread would wait on the database
lock; and tests, unless one turns it on) the receivers run in the request after commit.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)


class ReceiverRunner:
    """The newest point per node, handed to `deliver(node_id, point)` by a daemon thread."""

    def __init__(self, deliver: Callable[[int, Any], None]) -> None:
        self.deliver = deliver
        self.pending: dict[int, Any] = {}
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.pid = 0
        self.busy = False
        self.delivered = 0  # points handed to the receivers (tests, /metrics)
        self.replaced = 0  # waiting points replaced by a newer one of the same node

    def submit(self, node_id: int, point: Any) -> None:
        with self.lock:
            current = self.pending.get(node_id)
            if current is not None:
                self.replaced += 1
            if current is None or point.time >= current.time:
                self.pending[node_id] = point
        self._ensure_thread()
        self.wake.set()

    def _ensure_thread(self) -> None:
        # A forked process (`mqtt_bridge --processes`, Celery's prefork pool) has no thread.
        if self.thread is not None and self.thread.is_alive() and self.pid == os.getpid():
            return
        with self.lock:
            if self.thread is not None and self.thread.is_alive() and self.pid == os.getpid():
                return
            self.pid = os.getpid()
            self.thread = threading.Thread(target=self._run, name="ingest-receivers", daemon=True)
            self.thread.start()

    def _take(self) -> dict[int, Any]:
        with self.lock:
            batch, self.pending = self.pending, {}
            self.wake.clear()
            self.busy = bool(batch)
        return batch

    def _run(self) -> None:
        while True:
            self.wake.wait()
            batch = self._take()
            try:
                close_old_connections()
                for node_id, point in batch.items():
                    try:
                        self.deliver(node_id, point)
                    except Exception:  # deliver logs each receiver's failure; this is a bug
                        logger.exception("telemetry receivers failed for node %s", node_id)
                    self.delivered += 1
            finally:
                # A pooled connection goes back to the pool between rounds.
                connections.close_all()
                self.busy = False

    def flush_now(self, timeout: float = 5.0) -> bool:
        """Wait until every point submitted so far has been delivered (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                idle = not self.pending and not self.wake.is_set() and not self.busy
            if idle:
                return True
            time.sleep(0.002)
        return False

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
entirely between two evaluations. TELEMETRY_RECEIVERS_WINDOW_MS spaces the rounds: without it a
gateway's sequential requests made one evaluation each (~6 ms of Python), and the thread held
the GIL against the requests themselves (81 % of the ingest process's GIL samples in
bench.ingest's 100-point phase; that request's p95 was 11.4 ms).

Off (SQLite, the embedded default, where a second writer thread would wait on the database
lock; and tests, unless one turns it on) the receivers run in the request after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import close_old_connections, connections

from apps.telemetry.newest import NewestPerNode

logger = logging.getLogger(__name__)


class ReceiverRunner(NewestPerNode[Any]):
    """The newest point per node, handed to `deliver(node_id, point)` by a daemon thread."""

    thread_name = "ingest-receivers"

    def __init__(self, deliver: Callable[[int, Any], None], window_s: float = 0.0) -> None:
        super().__init__(window_s)
        self.deliver = deliver
        self.delivered = 0  # points handed to the receivers (tests, /metrics)

    @staticmethod
    def _time(item: Any) -> Any:
        return item.time

    def submit(self, node_id: int, point: Any) -> None:
        self.offer(node_id, point)

    def _round(self, batch: dict[int, Any]) -> None:
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

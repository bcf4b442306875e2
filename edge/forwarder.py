"""Every point goes through the on-disk buffer; `drain` sends it upstream in order and deletes
it only after the platform answered. A crash between the answer and the deletion resends a
batch, which the platform reports as duplicates: the platform ends with each point once."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from edge.buffer import SqliteBuffer
from edge.publishers import Publisher, UpstreamUnavailable

logger = logging.getLogger(__name__)


@dataclass
class ForwardStats:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0


class Forwarder:
    def __init__(
        self, buffer: SqliteBuffer, publisher: Publisher, *, batch_size: int = 1000
    ) -> None:
        self.buffer = buffer
        self.publisher = publisher
        self.batch_size = batch_size
        self.stats = ForwardStats()

    def enqueue(self, points: list[dict[str, Any]]) -> None:
        self.buffer.append(points)

    def drain(self) -> bool:
        """Send everything buffered. False when the upstream is unreachable (points stay)."""
        while True:
            last_id, batch = self.buffer.peek(self.batch_size)
            if not batch:
                return True
            try:
                result = self.publisher.publish(batch)
            except UpstreamUnavailable as exc:
                self.stats.failures += 1
                logger.warning(
                    "Upstream unavailable (%s); %d points buffered", exc, len(self.buffer)
                )
                return False
            self.buffer.ack(last_id)
            self.stats.sent += len(batch)
            self.stats.accepted += result.accepted
            self.stats.duplicates += result.duplicates
            for rejection in result.rejected:
                logger.error("Platform rejected a point: %s", rejection)
            self.stats.rejected.extend(result.rejected)

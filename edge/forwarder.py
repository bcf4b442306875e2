"""Every point goes through the on-disk buffer; `drain` sends it upstream in order and deletes
it only after the platform answered. A crash between the answer and the deletion resends a
batch, which the platform reports as duplicates: the platform ends with each point once.

One bad point never blocks a node. Points the platform rejects (by index, in a 207 or 400) are
parked in the dead-letter file. A batch the platform refuses as a whole (400 without reasons,
413), or that meets `max_attempts` server errors in a row, is split in halves, recursively,
until the points that fail alone are found; those are parked, the rest is delivered. A server
error is blamed on a point only when other parts of its batch went through: when every part
fails, the platform is broken, not the data, and the batch stays buffered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge.buffer import SqliteBuffer
from edge.deadletter import DeadLetter, DeadLetterFile
from edge.publishers import (
    BatchRefused,
    Publisher,
    PublishResult,
    UpstreamServerError,
    UpstreamUnavailable,
)

logger = logging.getLogger(__name__)


@dataclass
class ForwardStats:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0
    dead_lettered: int = 0
    splits: int = 0  # batches split to find the points that fail alone


@dataclass
class _Suspect:
    point: dict[str, Any]
    reason: str
    server_error: bool  # True: a server error, only blamed on the point with proof


class Forwarder:
    def __init__(
        self,
        buffer: SqliteBuffer,
        publisher: Publisher,
        *,
        batch_size: int = 1000,
        max_attempts: int = 3,
        dead_letters: DeadLetterFile | None = None,
        on_dead_letter: Callable[[list[DeadLetter]], None] | None = None,
    ) -> None:
        self.buffer = buffer
        self.publisher = publisher
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.dead_letters = dead_letters or DeadLetterFile.beside(buffer.path)
        self.on_dead_letter = on_dead_letter
        self.stats = ForwardStats()
        self._server_errors = 0  # in a row, on the batch at the head of the buffer
        # one drain at a time: a send still running in its thread when the gateway stops must
        # finish (and acknowledge) before the final drain reads the buffer's head again
        self._draining = threading.Lock()

    def enqueue(self, points: list[dict[str, Any]]) -> None:
        self.buffer.append(points)

    def drain(self, *, up_to: int | None = None) -> bool:
        """Send everything buffered (up to the point with id `up_to`, when given: see
        `SqliteBuffer.last_id`). False when the upstream is unreachable (points stay)."""
        with self._draining:
            return self._drain(up_to)

    def _drain(self, up_to: int | None) -> bool:
        while True:
            last_id, batch = self.buffer.peek(self.batch_size, up_to=up_to)
            if not batch:
                return True
            try:
                self._deliver(batch)
            except UpstreamUnavailable as exc:
                self.stats.failures += 1
                logger.warning(
                    "Upstream unavailable (%s); %d points buffered", exc, len(self.buffer)
                )
                return False
            self._server_errors = 0
            self.buffer.ack(last_id)

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        """Deliver `batch` or park what cannot be delivered; UpstreamUnavailable: keep it all."""
        failure: BatchRefused | UpstreamServerError
        try:
            result = self.publisher.publish(batch)
        except BatchRefused as exc:
            failure = exc
            logger.error("The platform refused a batch of %d points (%s)", len(batch), exc)
        except UpstreamServerError as exc:
            self._server_errors += 1
            if self._server_errors < self.max_attempts:
                raise
            failure = exc
            logger.error(
                "%d server errors in a row on a batch of %d points (%s)",
                self._server_errors,
                len(batch),
                exc,
            )
        else:
            self._account(batch, result)
            return
        self.stats.splits += 1
        suspects: list[_Suspect] = []
        rejected: list[DeadLetter] = []  # parked only once the whole batch is settled
        try:
            delivered = self._split(batch, failure, suspects, rejected)
        except UpstreamUnavailable:
            # The batch stays buffered and is sent again whole: parking the rejections of the
            # halves delivered so far would park them twice; the retry budget starts anew.
            self._server_errors = 0
            raise
        self._park(rejected)
        if delivered == 0 and any(s.server_error for s in suspects):
            self._server_errors = 0  # try again, and split again only after max_attempts
            raise UpstreamUnavailable(
                "every part of the batch fails with a server error: the platform, not the "
                "data, looks broken; the batch stays buffered"
            )
        self._park([DeadLetter(s.point, s.reason) for s in suspects])

    def _split(
        self,
        points: list[dict[str, Any]],
        failure: BatchRefused | UpstreamServerError,
        suspects: list[_Suspect],
        rejected: list[DeadLetter],
    ) -> int:
        """`points` failed with `failure`: deliver its halves, splitting again those that fail.
        The points that fail alone go to `suspects`. Returns how many points were delivered."""
        if len(points) == 1:
            server_error = isinstance(failure, UpstreamServerError)
            suspects.append(_Suspect(points[0], f"refused alone: {failure}", server_error))
            return 0
        middle = len(points) // 2
        delivered = 0
        for half in (points[:middle], points[middle:]):
            try:
                result = self.publisher.publish(half)
            except (BatchRefused, UpstreamServerError) as exc:
                delivered += self._split(half, exc, suspects, rejected)
            else:
                rejected.extend(self._account(half, result, park=False))
                delivered += len(half)
        return delivered

    def _account(
        self, batch: list[dict[str, Any]], result: PublishResult, *, park: bool = True
    ) -> list[DeadLetter]:
        """Count a delivered batch; its rejected points are parked (or returned, park=False)."""
        self.stats.sent += len(batch)
        self.stats.accepted += result.accepted
        self.stats.duplicates += result.duplicates
        self.stats.rejected.extend(result.rejected)
        letters = []
        for rejection in result.rejected:
            index = rejection.get("index")
            errors = rejection.get("errors")
            if isinstance(index, int) and 0 <= index < len(batch):
                point: dict[str, Any] = batch[index]
            else:  # a rejection we cannot pin to a point: keep what the platform said
                point = {"unknown_index": index}
            letters.append(
                DeadLetter(
                    point,
                    "rejected by the platform",
                    errors if isinstance(errors, dict) else {"reason": str(errors)},
                )
            )
        if park:
            self._park(letters)
        return letters

    def _park(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        parked = self.dead_letters.park(letters)
        self.stats.dead_lettered += len(parked)
        for letter in parked:
            logger.error(
                "Dead letter (%s): %s %s -> %s",
                letter.reason,
                letter.point,
                letter.errors or "",
                self.dead_letters.path or "memory",
            )
        if self.on_dead_letter is not None:
            self.on_dead_letter(parked)

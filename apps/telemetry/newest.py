"""The newest item per node, handed over in rounds by a thread of this process.

Both things that follow a stored batch without holding up its request work this way: the live
publisher (live.py: newest payload per node to the websocket fan-out) and the receivers of stored
points (after_ingest.py: threshold rules, loaded material, battery charge). Ingest offers each
request's newest item per node; while the thread is busy with a round, a later item of a node
replaces that node's waiting one (an older one never replaces a newer), so a flood of requests
costs one handling per node per round, not one per request. `window_s` spaces the rounds: a
round starts at most once per window (a quiet node's item is handled at once; under a flood each
node is handled once per window, not once per request).
"""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")


class NewestPerNode(ABC, Generic[Item]):
    """Subclasses say how old an item is (`_time`) and what a round does (`_round`)."""

    thread_name = "newest-per-node"

    def __init__(self, window_s: float = 0.0) -> None:
        self.window_s = window_s
        self.pending: dict[int, Item] = {}
        self.changed = threading.Condition()
        self.thread: threading.Thread | None = None
        self.pid = 0
        self.busy = False  # a round is under way
        self.replaced = 0  # waiting items replaced by a newer one of the same node

    @staticmethod
    @abstractmethod
    def _time(item: Item) -> Any:
        """How new `item` is (an older one never replaces a newer)."""

    @abstractmethod
    def _round(self, batch: dict[int, Item]) -> None:
        """Handle one round: each node's newest item."""

    def _between_rounds(self, round_started: float) -> None:
        """Runs in the thread after each round: the window spaces the rounds; items arriving
        meanwhile wait in `pending`, each node's newest only."""
        rest = self.window_s - (time.monotonic() - round_started)
        if rest > 0:
            time.sleep(rest)

    def _thread_main(self) -> None:
        """The thread's body: rounds for ever. A subclass may wrap it (an event loop)."""
        while True:
            batch = self._next_round()
            started = time.monotonic()
            try:
                self._round(batch)
            finally:
                self._round_done()
            self._between_rounds(started)

    def offer(self, node_id: int, item: Item) -> None:
        with self.changed:
            current = self.pending.get(node_id)
            if current is not None:
                self.replaced += 1
            if current is None or self._time(item) >= self._time(current):
                self.pending[node_id] = item
            self.changed.notify_all()
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        # A forked process (Celery's prefork pool, `mqtt_bridge --processes`) inherits no
        # thread: it starts its own.
        with self.changed:
            if self.thread is not None and self.thread.is_alive() and self.pid == os.getpid():
                return
            self.pid = os.getpid()
            self.thread = threading.Thread(
                target=self._thread_main, name=self.thread_name, daemon=True
            )
            self.thread.start()

    def _next_round(self) -> dict[int, Item]:
        with self.changed:
            self.changed.wait_for(lambda: bool(self.pending))
            batch, self.pending = self.pending, {}
            self.busy = True
            return batch

    def _round_done(self) -> None:
        with self.changed:
            self.busy = False
            self.changed.notify_all()

    def flush_now(self, timeout: float = 5.0) -> bool:
        """Wait until every item offered so far has been handled (tests, shutdown)."""
        with self.changed:
            return self.changed.wait_for(lambda: not self.pending and not self.busy, timeout)

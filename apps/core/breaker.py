"""A small circuit breaker for optional backing services (the cache, the channel layer, the
Celery broker): after a failure, callers skip the service for a few seconds instead of each
waiting on it, and the outage and the recovery are logged once each."""

from __future__ import annotations

import logging
import threading
import time

import redis

logger = logging.getLogger("imewe.degraded")

# What an unreachable Redis raises (asyncio's timeouts are OSError's TimeoutError since 3.11).
# Anything else is a bug and propagates.
REDIS_UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class Breaker:
    def __init__(self, name: str, *, open_s: float) -> None:
        self.name = name
        self.open_s = open_s
        self._open_until = 0.0
        self._down = False
        self._lock = threading.Lock()

    def is_open(self) -> bool:
        """True while calls should skip the service (a failure happened under `open_s` ago)."""
        return time.monotonic() < self._open_until

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self._open_until = time.monotonic() + self.open_s
            first = not self._down
            self._down = True
        if first:
            logger.warning(
                "%s unreachable (%s: %s): degraded, retrying every %g s",
                self.name,
                type(exc).__name__,
                exc,
                self.open_s,
            )

    def succeeded(self) -> None:
        if not self._down:
            return
        with self._lock:
            was_down, self._down, self._open_until = self._down, False, 0.0
        if was_down:
            logger.warning("%s reachable again", self.name)

"""Live telemetry to the websocket fan-out, coalesced per node.

Ingest (HTTP batch and MQTT) tells `live_publish(node_id, payload)` the newest point of each
node it stored. Nothing is sent per request: a publisher thread of the ingest process keeps only
the newest payload of each node and sends what changed at most once per coalescing window
(TELEMETRY_LIVE_WINDOW_MS, default 50 ms) to the node's group, all nodes' sends of a window
concurrently on one event loop with persistent Redis connections. A request never waits for the
channel layer, and however many requests a gateway sends, the fan-out processes get at most one
message per node per window (issue 19: 100 requests/s of 100 points flooded the websocket
process's channel queues and every live view died).

A quiet node's point is sent at once (the window only spaces later sends), so coalescing adds at
most one window of delay, under load only. An older point never overwrites a newer one (late
store-and-forward deliveries are stored, not shown as "live").

With the in-memory channel layer (the embedded `make run`: one process, no Redis) the layer
lives on the server's event loop and cannot be reached from another loop: there each newest
point is broadcast as before, through `apps.core.realtime.broadcast`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from apps.core.breaker import REDIS_UNREACHABLE
from apps.core.realtime import SEND_TIMEOUT_S, breaker, broadcast

logger = logging.getLogger(__name__)


def telemetry_group(node_id: int) -> str:
    return f"telemetry.node.{node_id}"


def _coalescing_layer(layer: Any) -> bool:
    """Whether `layer` may be used from the publisher's own event loop (channels-redis keeps a
    connection pool per event loop; the in-memory layer's queues belong to the server's loop)."""
    return layer is not None and type(layer).__module__.startswith("channels_redis")


class LivePublisher:
    """The newest payload per node, sent by a daemon thread at most once per `window_s`."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.pending: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.pid = 0
        self.busy = False  # a window's sends are under way
        self.sent = 0  # messages handed to the channel layer (for tests and /metrics)
        self.dropped = 0  # newest values dropped because the layer was unreachable

    def publish(self, node_id: int, payload: dict[str, Any]) -> None:
        with self.lock:
            current = self.pending.get(node_id)
            if current is None or payload["time"] >= current["time"]:
                self.pending[node_id] = payload
        self._ensure_thread()
        self.wake.set()

    def _ensure_thread(self) -> None:
        import os

        # A forked process (Celery's prefork pool, `mqtt_bridge --processes`) has no thread:
        # start its own.
        if self.thread is not None and self.thread.is_alive() and self.pid == os.getpid():
            return
        with self.lock:
            if self.thread is not None and self.thread.is_alive() and self.pid == os.getpid():
                return
            self.pid = os.getpid()
            self.thread = threading.Thread(target=self._run, name="live-publisher", daemon=True)
            self.thread.start()

    def _take(self) -> dict[int, dict[str, Any]]:
        with self.lock:
            batch, self.pending = self.pending, {}
            self.wake.clear()
            self.busy = bool(batch)
        return batch

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            while True:
                self.wake.wait()
                started = time.monotonic()
                batch = self._take()
                if batch:
                    self.busy = True
                    try:
                        loop.run_until_complete(self._send(batch))
                    finally:
                        self.busy = False
                # the window spaces sends; points arriving meanwhile wait in `pending`
                rest = self.window_s - (time.monotonic() - started)
                if rest > 0:
                    time.sleep(rest)
        except Exception:  # never expected: log it, and the next publish starts a new thread
            logger.exception("live telemetry publisher stopped")
        finally:
            loop.close()

    async def _send(self, batch: dict[int, dict[str, Any]]) -> None:
        layer = get_channel_layer()
        if layer is None or breaker.is_open():
            self.dropped += len(batch)
            return
        results = await asyncio.gather(
            *(
                asyncio.wait_for(
                    layer.group_send(
                        telemetry_group(node_id), {"type": "broadcast", "payload": payload}
                    ),
                    timeout=SEND_TIMEOUT_S,
                )
                for node_id, payload in batch.items()
            ),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        self.sent += len(batch) - len(failures)
        self.dropped += len(failures)
        for failure in failures:
            if isinstance(failure, REDIS_UNREACHABLE):
                breaker.failed(failure)
                return
            logger.error("live telemetry send failed: %r", failure)
        if not failures:
            breaker.succeeded()

    def flush_now(self, timeout: float = 5.0) -> bool:
        """Wait until everything published so far has been sent (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                idle = not self.pending and not self.wake.is_set() and not self.busy
            if idle:
                return True
            time.sleep(0.005)
        return False


publisher = LivePublisher(window_s=getattr(settings, "TELEMETRY_LIVE_WINDOW_MS", 50) / 1000)


def live_publish(node_id: int, payload: dict[str, Any]) -> None:
    """Show `payload` (the node's newest stored point) on the node's live views."""
    if _coalescing_layer(get_channel_layer()):
        publisher.publish(node_id, payload)
    else:
        broadcast(telemetry_group(node_id), payload)

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
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from apps.core.breaker import REDIS_UNREACHABLE
from apps.core.realtime import SEND_TIMEOUT_S, breaker, broadcast
from apps.telemetry.newest import NewestPerNode

logger = logging.getLogger(__name__)


def telemetry_group(node_id: int) -> str:
    return f"telemetry.node.{node_id}"


def _coalescing_layer(layer: Any) -> bool:
    """Whether `layer` may be used from the publisher's own event loop (channels-redis keeps a
    connection pool per event loop; the in-memory layer's queues belong to the server's loop)."""
    return layer is not None and type(layer).__module__.startswith("channels_redis")


class LivePublisher(NewestPerNode[dict[str, Any]]):
    """The newest payload per node, sent by a daemon thread at most once per `window_s`."""

    thread_name = "live-publisher"

    def __init__(self, window_s: float) -> None:
        super().__init__(window_s)
        self.loop: asyncio.AbstractEventLoop | None = None  # the thread's own
        self.sent = 0  # messages handed to the channel layer (for tests and /metrics)
        self.dropped = 0  # newest values dropped because the layer was unreachable

    @staticmethod
    def _time(item: dict[str, Any]) -> Any:
        return item["time"]

    def publish(self, node_id: int, payload: dict[str, Any]) -> None:
        self.offer(node_id, payload)

    def _thread_main(self) -> None:
        self.loop = asyncio.new_event_loop()
        try:
            super()._thread_main()
        except Exception:  # never expected: log it, and the next publish starts a new thread
            logger.exception("live telemetry publisher stopped")
        finally:
            self.loop.close()

    def _round(self, batch: dict[int, dict[str, Any]]) -> None:
        assert self.loop is not None
        self.loop.run_until_complete(self._send(batch))

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


publisher = LivePublisher(window_s=getattr(settings, "TELEMETRY_LIVE_WINDOW_MS", 50) / 1000)


def live_publish(node_id: int, payload: dict[str, Any]) -> None:
    """Show `payload` (the node's newest stored point) on the node's live views."""
    if _coalescing_layer(get_channel_layer()):
        publisher.publish(node_id, payload)
    else:
        broadcast(telemetry_group(node_id), payload)

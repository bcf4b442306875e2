"""MQTT -> telemetry bridge. Subscribes to `factory/+/machine/+/telemetry` (QoS 1), batches the
points per node, stores them through `telemetry_ingest`, and acknowledges each message only
after its points are stored (at-least-once; duplicates are harmless because (node, time) is
unique). Rejections go to `factory/<site>/machine/<node>/errors`.

A poison message never blocks a node: when storing a flush raises, its messages are stored one
by one, and a message that still raises is rejected on `.../errors` (code "not_stored") and
acknowledged, so the broker does not hand it over again. Only when the database itself is
unreachable do messages stay unacknowledged, queued for the next flush.

A message is JSON: {"token": "imw_...", "points": [ {...}, ... ]} (or "point": {...}); the token
is the node's device token, and the topic's machine id must be that node.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from django.core.cache import cache
from django.db import close_old_connections, connection, connections

from apps.telemetry.limits import MAX_BODY_BYTES, MAX_CONTAINERS, json_containers
from apps.telemetry.services import MAX_BATCH, telemetry_ingest
from apps.vendors.services import device_authenticate

logger = logging.getLogger(__name__)
TOPIC = "factory/+/machine/+/telemetry"


class DatabaseUnavailable(Exception):
    """The database does not answer: keep the messages for a later flush."""


@dataclass
class _Pending:
    points: list[Any] = field(default_factory=list)
    # (message, site, index of its first point, number of points)
    messages: list[tuple[mqtt.MQTTMessage, str, int, int]] = field(default_factory=list)


class MqttBridge:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        client_id: str = "imewe-bridge",
        flush_interval: float = 0.2,
        max_points: int = 5000,
    ) -> None:
        self.host, self.port = host, port
        self.flush_interval = flush_interval
        self.max_points = min(max_points, MAX_BATCH)
        self.pending: dict[int, _Pending] = defaultdict(_Pending)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker acknowledged the subscription (SUBACK)
        self.stats = {"messages": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,  # the broker keeps QoS 1 messages while we are away
            manual_ack=True,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)  # exponential backoff

    # --- MQTT callbacks (network thread) -------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            logger.warning("MQTT connect refused: %s", reason)
            return
        client.subscribe(TOPIC, qos=1)
        self.connected.set()
        logger.info("MQTT bridge connected to %s:%s, subscribed to %s", self.host, self.port, TOPIC)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if self.stopping.is_set():
            connections.close_all()  # this (network) thread's database connections
        else:
            logger.warning("MQTT connection lost (%s); reconnecting with backoff", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.stats["messages"] += 1
        parts = message.topic.split("/")
        site, machine = parts[1], parts[3]
        payload = bytes(message.payload)
        # the HTTP batch's bounds, on the raw bytes before anything is parsed or authenticated
        if len(payload) > MAX_BODY_BYTES or json_containers(payload) > MAX_CONTAINERS:
            self._reject(
                site,
                machine,
                message,
                "payload_too_large",
                f"A message may hold at most {MAX_BODY_BYTES} bytes and {MAX_CONTAINERS} JSON "
                f"objects and arrays ({MAX_BATCH} points); publish smaller batches.",
            )
            return
        try:
            body = orjson.loads(payload)
            token = body["token"]
            points = body["points"] if "points" in body else [body["point"]]
            node_id = int(machine)
            if not isinstance(points, list) or not isinstance(token, str):
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            self._reject(
                site,
                machine,
                message,
                "invalid",
                'Send {"token": ..., "points": [...]} as JSON; the topic names the node id.',
            )
            return
        credential_node = self._node_for_token(token)
        if credential_node is None:
            self._reject(
                site,
                machine,
                message,
                "device_token_invalid",
                "Unknown or revoked device token, or the node is not approved.",
            )
            return
        if credential_node != node_id:
            self._reject(
                site,
                machine,
                message,
                "forbidden",
                f"This device may write only for node {credential_node}.",
            )
            return
        flush_now = False
        with self.lock:
            pending = self.pending[node_id]
            pending.messages.append((message, site, len(pending.points), len(points)))
            pending.points.extend(points)
            flush_now = len(pending.points) >= self.max_points
        if flush_now:
            self.flush(node_id)

    # --- work ----------------------------------------------------------------------------------

    def _node_for_token(self, token: str) -> int | None:
        key = f"mqtt-device:{token[-16:]}:{hash(token)}"
        node_id = cache.get(key)
        if node_id is None:
            close_old_connections()
            credential = device_authenticate(token=token)
            if credential is None:
                return None
            node_id = credential.node_id
            cache.set(key, node_id, timeout=30)  # a revoked token stops within 30 s
        return int(node_id)

    def _reject(
        self, site: str, machine: str, message: mqtt.MQTTMessage, code: str, text: str
    ) -> None:
        self.stats["rejected"] += 1
        self._publish_error(
            site, machine, {"error": {"code": code, "message": text, "details": None}}
        )
        self.client.ack(message.mid, message.qos)

    def _publish_error(self, site: str, machine: str, body: dict[str, Any]) -> None:
        self.client.publish(f"factory/{site}/machine/{machine}/errors", orjson.dumps(body), qos=1)

    def flush(self, node_id: int | None = None) -> None:
        with self.lock:
            node_ids = [node_id] if node_id is not None else list(self.pending)
            batches = {n: self.pending.pop(n) for n in node_ids if n in self.pending}
        for nid, batch in batches.items():
            try:
                self._store_batch(nid, batch)
            except DatabaseUnavailable:
                self._requeue(nid, batch)
                logger.warning(
                    "Database unavailable: %d telemetry messages of node %s wait unacknowledged",
                    len(batch.messages),
                    nid,
                )
                continue
            # Stored (or reported): only now does the broker forget the messages.
            for message, *_ in batch.messages:
                self.client.ack(message.mid, message.qos)

    def _store_batch(self, nid: int, batch: _Pending) -> None:
        for start in range(0, len(batch.points), MAX_BATCH):
            end = min(start + MAX_BATCH, len(batch.points))
            try:
                self._ingest(nid, batch, start, end)
            except DatabaseUnavailable:
                raise
            except Exception:
                logger.exception(
                    "Storing %d points of node %s failed; retrying message by message",
                    end - start,
                    nid,
                )
                self._store_one_by_one(nid, batch, start, end)

    def _store_one_by_one(self, nid: int, batch: _Pending, start: int, end: int) -> None:
        """Store the messages of points[start:end] one at a time: a message that still fails is
        poison; it is rejected (and acknowledged with the others) instead of blocking the node."""
        for message, site, first, count in batch.messages:
            low, high = max(first, start), min(first + count, end)
            if low >= high:
                continue  # the message has no point in this chunk
            try:
                self._ingest(nid, batch, low, high)
            except DatabaseUnavailable:
                raise
            except Exception:
                logger.exception(
                    "Telemetry message %s on %s could not be stored; rejected",
                    message.mid,
                    message.topic,
                )
                self.stats["rejected"] += high - low
                self._publish_error(
                    site,
                    str(nid),
                    {
                        "error": {
                            "code": "not_stored",
                            "message": "The platform could not store this message (the error "
                            "is logged); it will not be retried. Check its points.",
                            "details": {"points": count},
                        }
                    },
                )

    def _ingest(self, nid: int, batch: _Pending, start: int, end: int) -> None:
        close_old_connections()
        try:
            report = telemetry_ingest(points=batch.points[start:end], node_id=nid)
        except Exception:
            if not self._database_up():
                raise DatabaseUnavailable from None
            raise
        self.stats["accepted"] += report.accepted
        self.stats["duplicates"] += len(report.duplicates)
        self.stats["rejected"] += len(report.rejected)
        for rejection in report.rejected:
            index = rejection["index"] + start
            message, site, first, _count = next(
                m for m in reversed(batch.messages) if m[2] <= index
            )
            self._publish_error(
                site,
                str(nid),
                {
                    "error": {
                        "code": "invalid",
                        "message": "A point was rejected.",
                        "details": {"index": index - first, "errors": rejection["errors"]},
                    }
                },
            )

    @staticmethod
    def _database_up() -> bool:
        """Whether the database answers: an error while it does is the message's fault."""
        close_old_connections()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception:
            connection.close()
            return False
        return True

    def _requeue(self, nid: int, batch: _Pending) -> None:
        """Put `batch` back in front of what arrived for the node meanwhile."""
        with self.lock:
            newer = self.pending.pop(nid, None)
            if newer is not None:
                offset = len(batch.points)
                batch.points.extend(newer.points)
                batch.messages.extend(
                    (message, site, first + offset, count)
                    for message, site, first, count in newer.messages
                )
            self.pending[nid] = batch

    def _flush_loop(self) -> None:
        while not self.stopping.wait(self.flush_interval):
            try:
                self.flush()
            except Exception:  # keep the bridge alive; unacked messages are redelivered
                logger.exception("Flushing telemetry failed; messages stay unacknowledged")
        connections.close_all()  # this thread's database connections

    def start(self) -> None:
        """Connect and run in background threads (network loop + flusher)."""
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        self.flusher = threading.Thread(target=self._flush_loop, name="mqtt-flush", daemon=True)
        self.flusher.start()

    def stop(self) -> None:
        self.stopping.set()
        self.flusher.join(timeout=5)
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()

    def run_forever(self) -> None:
        self.start()
        try:
            while not self.stopping.is_set():
                time.sleep(10)
                logger.info("MQTT bridge: %s", self.stats)
        finally:
            self.stop()

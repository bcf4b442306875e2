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

Scale-out: N bridges (processes, on one machine or many) share the load through an MQTT shared
subscription, `$share/<group>/factory/+/machine/+/telemetry`: the broker hands each message to
one member of the group. Each bridge needs a client id of its own (two with the same id would
disconnect each other in turn) that stays the same across restarts: its session is persistent
(clean_session False), and Mosquitto keeps handing a member's share of the messages to its
session while it is away, with the QoS 1 messages it had not acknowledged; they are delivered
when the same id connects again, never to another member. `client_id_for` derives the id from
the host name and the bridge's index; a bridge that goes away for good is retired with
`manage.py mqtt_bridge --retire <client id>`, which stores what its session holds and ends it.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from django.db import close_old_connections, connection, connections
from paho.mqtt.enums import CallbackAPIVersion

from apps.telemetry.limits import MAX_BODY_BYTES, MAX_CONTAINERS, json_containers
from apps.telemetry.services import MAX_BATCH, telemetry_ingest
from apps.vendors.services import device_authenticate

logger = logging.getLogger(__name__)
TOKEN_TTL_S = 30.0  # a revoked token stops being accepted within this
UNKNOWN_TOKEN_TTL_S = 5.0  # a flood of bad tokens costs one query per token per 5 s
TOPIC_ROOT = "factory"  # what gateways publish under: <root>/<site>/machine/<node id>/telemetry
SHARE_GROUP = "imewe"  # the shared subscription's group of the production bridges


def topic_filter(root: str = TOPIC_ROOT) -> str:
    return f"{root}/+/machine/+/telemetry"


def client_id_for(*, prefix: str | None = None, index: int = 0) -> str:
    """`<prefix>-<index>`, the prefix `imewe-bridge-<host name>` unless given: unique per bridge
    process (the index tells a machine's processes apart) and the same after a restart, so the
    bridge finds its persistent session, and the messages waiting in it, again. In a container
    the host name changes with every new container: give the prefix (MQTT_CLIENT_ID) there."""
    return f"{prefix or f'imewe-bridge-{socket.gethostname()}'}-{index}"


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
        flush_messages: int = 10,
        topic_root: str = TOPIC_ROOT,
        share_group: str | None = None,
    ) -> None:
        """`share_group` None: a subscription of its own, every message (one bridge, tests);
        a group name: the broker splits the messages among the group's bridges."""
        self.host, self.port = host, port
        self.client_id = client_id
        self.topic_root = topic_root
        self.share_group = share_group
        self.subscription = (
            f"$share/{share_group}/{topic_filter(topic_root)}"
            if share_group
            else topic_filter(topic_root)
        )
        self.flush_interval = flush_interval
        self.max_points = min(max_points, MAX_BATCH)
        # Mosquitto sends a client at most 20 messages it has not acknowledged: waiting for the
        # timer with the window full would cap a bridge at 20 messages per flush_interval (with
        # 100-point messages 10,000 points/s). Half the window starts a flush at once.
        self.flush_messages = flush_messages
        # Parsed points waiting to be stored, at most this many: beyond it the network thread
        # waits, so the broker, not this process's memory, holds the backlog. Mosquitto sends
        # at most 20 unacknowledged messages (max_inflight_messages), which stays below it, so
        # with its defaults the network thread never waits (not even while the database is
        # down: it keeps answering keepalives); the bound is for brokers configured without.
        self.max_pending = 20 * MAX_BATCH
        self.pending: dict[int, _Pending] = defaultdict(_Pending)
        self.pending_points = 0
        self.pending_messages = 0
        self.flush_everything = False  # set with `full` when flush_messages are waiting
        self.lock = threading.Lock()
        self.room = threading.Condition(self.lock)  # pending_points fell below max_pending
        self.full = threading.Event()  # a node has max_points waiting: flush without waiting
        self.tokens: dict[str, tuple[int | None, float]] = {}  # token -> (node id, valid until)
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker acknowledged the subscription (SUBACK)
        self.stats = {"messages": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
        self.retiring = False  # see retire()
        self.last_message_at = time.monotonic()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,  # the broker keeps QoS 1 messages while we are away
            manual_ack=True,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)  # exponential backoff

    # --- MQTT callbacks (network thread) -------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            logger.warning("MQTT connect refused: %s", reason)
            return
        if self.retiring:
            # What the session holds still arrives; no new message is routed to it any more.
            client.unsubscribe([self.subscription, topic_filter(self.topic_root)])
        else:
            client.subscribe(self.subscription, qos=1)
        self.connected.set()
        logger.info("MQTT bridge %s connected to %s:%s", self.client_id, self.host, self.port)

    def _on_subscribe(self, *args: Any) -> None:
        # Only now does the broker route messages here (the benchmark waits for this line).
        self.subscribed.set()
        logger.info("MQTT bridge %s subscribed to %s", self.client_id, self.subscription)

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
        self.last_message_at = time.monotonic()
        parts = message.topic.split("/")
        site, machine = parts[-4], parts[-2]  # <root>/<site>/machine/<node id>/telemetry
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
        with self.lock:
            pending = self.pending[node_id]
            pending.messages.append((message, site, len(pending.points), len(points)))
            pending.points.extend(points)
            self.pending_points += len(points)
            self.pending_messages += 1
            if self.pending_messages >= self.flush_messages:
                self.flush_everything = True
                self.full.set()
            elif len(pending.points) >= self.max_points:
                self.full.set()
            # Storing happens on the flusher thread, never here: this thread goes on reading
            # and parsing while a COPY waits for PostgreSQL, and keeps answering the broker's
            # keepalives however slow the database is.
            while self.pending_points > self.max_pending and not self.stopping.is_set():
                self.room.wait(1.0)

    # --- work ----------------------------------------------------------------------------------

    def _node_for_token(self, token: str) -> int | None:
        """The node `token` writes for, or None; remembered in this process for TOKEN_TTL_S
        (unknown tokens for UNKNOWN_TOKEN_TTL_S), so a message costs no round-trip."""
        now = time.monotonic()
        known = self.tokens.get(token)
        if known is not None and known[1] > now:
            return known[0]
        close_old_connections()
        credential = device_authenticate(token=token)
        node_id = None if credential is None else int(credential.node_id)
        if len(self.tokens) >= 10_000:  # bounded, whatever a publisher sends
            self.tokens.clear()
        ttl = TOKEN_TTL_S if node_id is not None else UNKNOWN_TOKEN_TTL_S
        self.tokens[token] = (node_id, now + ttl)
        return node_id

    def _reject(
        self, site: str, machine: str, message: mqtt.MQTTMessage, code: str, text: str
    ) -> None:
        self.stats["rejected"] += 1
        self._publish_error(
            site, machine, {"error": {"code": code, "message": text, "details": None}}
        )
        self.client.ack(message.mid, message.qos)

    def _publish_error(self, site: str, machine: str, body: dict[str, Any]) -> None:
        topic = f"{self.topic_root}/{site}/machine/{machine}/errors"
        self.client.publish(topic, orjson.dumps(body), qos=1)

    def flush(self, *, full_only: bool = False) -> bool:
        """Store what waits (with `full_only`, only nodes with max_points waiting). False when
        the database was unavailable (the messages wait, unacknowledged)."""
        stored = True
        with self.lock:
            node_ids = [
                n
                for n, p in self.pending.items()
                if not full_only or len(p.points) >= self.max_points
            ]
            batches = {n: self.pending.pop(n) for n in node_ids}
            self.pending_points -= sum(len(b.points) for b in batches.values())
            self.pending_messages -= sum(len(b.messages) for b in batches.values())
            self.room.notify_all()
        for nid, batch in batches.items():
            try:
                self._store_batch(nid, batch)
            except DatabaseUnavailable:
                stored = False
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
        return stored

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
            self.pending_points += len(batch.points)  # taken out by flush(), back in again
            self.pending_messages += len(batch.messages)
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
        """Every flush_interval everything; in between, everything as soon as flush_messages
        wait, or a node as soon as it has max_points. While the database is down, only on the
        timer."""
        due = time.monotonic() + self.flush_interval
        database_down = False
        while not self.stopping.is_set():
            if database_down:
                self.stopping.wait(max(0.0, due - time.monotonic()))
            else:
                self.full.wait(max(0.0, due - time.monotonic()))
            self.full.clear()
            with self.lock:
                everything = self.flush_everything or time.monotonic() >= due
                self.flush_everything = False
            try:
                database_down = not self.flush(full_only=not everything)
            except Exception:  # keep the bridge alive; unacked messages are redelivered
                logger.exception("Flushing telemetry failed; messages stay unacknowledged")
            if everything:
                due = time.monotonic() + self.flush_interval
        connections.close_all()  # this thread's database connections

    def start(self) -> None:
        """Connect and run in background threads (network loop + flusher)."""
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        self.flusher = threading.Thread(target=self._flush_loop, name="mqtt-flush", daemon=True)
        self.flusher.start()

    def stop(self) -> None:
        self.stopping.set()
        self.full.set()  # the flusher's wait ends now
        with self.lock:
            self.room.notify_all()  # so does the network thread's, should it wait for room
        self.flusher.join(timeout=5)
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()

    def retire(self, *, quiet_s: float = 3.0, timeout_s: float = 600.0) -> bool:
        """Take this client id out of the shared group for good (a bridge removed when scaling
        down, or the single bridge's old fixed id `imewe-bridge`): connect with its session,
        leave the subscription, store and acknowledge whatever the session held, then end the
        session. Returns whether it was drained (no message for `quiet_s`) before `timeout_s`."""
        self.retiring = True
        self.start()
        deadline = time.monotonic() + timeout_s
        drained = False
        if self.connected.wait(30):
            self.last_message_at = time.monotonic()
            while time.monotonic() < deadline and not self.stopping.is_set():
                if time.monotonic() - self.last_message_at >= quiet_s:
                    drained = True
                    break
                self.stopping.wait(0.2)
        self.stop()
        if drained:
            ending = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True
            )
            ending.connect(self.host, self.port)  # a clean connect discards the session
            ending.disconnect()
        logger.info("MQTT bridge %s retired (drained: %s): %s", self.client_id, drained, self.stats)
        return drained

    def run_forever(self) -> None:
        self.start()
        try:
            # wait(), not sleep(): a SIGTERM handler's stopping.set() ends the wait at once
            while not self.stopping.wait(10):
                logger.info("MQTT bridge %s: %s", self.client_id, self.stats)
        finally:
            self.stop()
            logger.info("MQTT bridge %s stopped: %s", self.client_id, self.stats)

"""Upstream publishers: how the gateway hands points to the platform."""

from __future__ import annotations

import gzip
import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlparse

import urllib3

logger = logging.getLogger(__name__)


class UpstreamUnavailable(Exception):
    """The platform could not be reached or answered with a server error: keep the points."""


class UpstreamServerError(UpstreamUnavailable):
    """The platform answered with a server error (500, 501, 505...: not 502/503/504, which say
    it is unreachable or busy). Repeated on the same batch, the batch may hold a poison point."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class BatchRefused(Exception):
    """The platform refused the batch as a whole (400 without per-point reasons, 413, 422):
    sending it again cannot help, its parts may go through."""


UNAVAILABLE_STATUSES = (502, 503, 504)
REFUSED_STATUSES = (400, 413, 422)


class UpstreamRefused(Exception):
    """The platform refused the credentials: retrying cannot help until someone acts."""


@dataclass(frozen=True)
class PublishResult:
    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]]


class Publisher(Protocol):
    def publish(self, points: list[dict[str, Any]]) -> PublishResult: ...


# One pool of kept-alive connections for the whole gateway (urllib3 is thread-safe): a new TCP
# and TLS connection per batch cost the gateway a handshake per POST and the platform's proxy
# one more connection to accept each time.
_POOL = urllib3.PoolManager(num_pools=8, maxsize=16)


class HttpsBatchPublisher:
    """POSTs gzip-compressed batches to /api/v1/telemetry/batch/ with the node's device token,
    over kept-alive connections."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0) -> None:
        self.url = base_url.rstrip("/") + "/api/v1/telemetry/batch/"
        self.token = token
        self.timeout = timeout

    def publish(self, points: list[dict[str, Any]]) -> PublishResult:
        body = gzip.compress(json.dumps(points).encode())
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Authorization": f"Device {self.token}",
        }
        try:
            response = _POOL.request(
                "POST",
                self.url,
                body=body,
                headers=headers,
                timeout=self.timeout,
                # No retries here: a failed batch stays buffered and the forwarder's backoff
                # sends it again (a kept-alive connection the platform closed while idle is
                # noticed by the pool before reuse and replaced).
                retries=False,
                redirect=False,
            )
        except (urllib3.exceptions.HTTPError, TimeoutError, ConnectionError, OSError) as exc:
            raise UpstreamUnavailable(str(exc)) from None
        status, data = response.status, response.data
        if status in (401, 403):
            raise UpstreamRefused(f"HTTP {status}: {data[:300]!r}")
        if status in REFUSED_STATUSES:
            error = _error_of(data)
            details = error.get("details")
            rejected = details.get("rejected") if isinstance(details, dict) else None
            if status == 400 and isinstance(rejected, list) and rejected:
                return PublishResult(0, 0, rejected)  # every point refused, by index
            message = str(error.get("message") or "")[:300]
            raise BatchRefused(f"HTTP {status}: {message}".rstrip(": "))
        if status >= 500 and status not in UNAVAILABLE_STATUSES:
            raise UpstreamServerError(status)
        if not 200 <= status < 300:  # 207: some points stored, the others refused by index
            raise UpstreamUnavailable(f"HTTP {status}")
        try:
            report = json.loads(data)
            return PublishResult(
                int(report["accepted"]), int(report["duplicates"]), list(report["rejected"])
            )
        except (ValueError, KeyError, TypeError) as exc:  # e.g. a proxy's HTML page with 200
            raise UpstreamUnavailable(f"HTTP {status} without a report: {exc!r}") from None


def _error_of(body: bytes) -> dict[str, Any]:
    """The `error` object of the platform's JSON error body ({} when there is none)."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


class MqttLink:
    """One MQTT connection shared by every node's publisher on this gateway. paho's network
    thread reconnects with backoff; rejections the platform publishes on each node's
    `.../errors` topic are logged and kept in `rejections`."""

    def __init__(self, url: str, *, client_id: str = "", site: str = "site") -> None:
        # here, so an HTTPS-only gateway does not need paho
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "mqtts"):
            raise ValueError("the MQTT upstream must be mqtt://host:port or mqtts://host:port")
        self.site = site
        self.connected = threading.Event()
        # the latest reports only: a flood on the errors topic must not grow the gateway's memory
        self.rejections: deque[dict[str, Any]] = deque(maxlen=1000)
        # called with (node, rejection) for each rejection, e.g. to park it as a dead letter
        self.on_rejection: Callable[[int, dict[str, Any]], None] | None = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"imewe-edge-{site}",
            clean_session=True,
        )
        if parsed.scheme == "mqtts":
            self.client.tls_set()
        if parsed.username:
            self.client.username_pw_set(parsed.username, parsed.password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *args: self.connected.clear()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.connect_async(
            parsed.hostname or "127.0.0.1",
            parsed.port or (8883 if parsed.scheme == "mqtts" else 1883),
        )
        self.client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            logger.warning("MQTT upstream refused the connection: %s", reason)
            return
        client.subscribe(f"factory/{self.site}/machine/+/errors", qos=1)
        self.connected.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            body = json.loads(message.payload)
        except ValueError:
            body = {"raw": message.payload[:300].decode(errors="replace")}
        if not isinstance(body, dict):
            body = {"raw": body}
        body["topic"] = message.topic
        self.rejections.append(body)
        logger.error("Platform rejected points on %s: %s", message.topic, body)
        node = message.topic.split("/")[3] if message.topic.count("/") >= 4 else ""
        if self.on_rejection is not None and node.isdigit():
            try:
                self.on_rejection(int(node), body)
            except Exception:  # on paho's network thread: an error here would end the uplink
                logger.exception("Could not record the rejection reported on %s", message.topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class MqttPublisher:
    """Publishes `{"token", "points"}` to `factory/<site>/machine/<node>/telemetry` with QoS 1
    and returns once the broker acknowledged it (PUBACK). The broker holds the message for the
    platform's bridge, which stores it and reports rejections on `.../errors` asynchronously,
    so `accepted` here means "handed to the broker"."""

    def __init__(self, link: MqttLink, node: int, token: str, *, timeout: float = 10.0) -> None:
        self.link = link
        self.topic = f"factory/{link.site}/machine/{node}/telemetry"
        self.token = token
        self.timeout = timeout

    def publish(self, points: list[dict[str, Any]]) -> PublishResult:
        if not self.link.connected.wait(timeout=min(self.timeout, 2.0)):
            raise UpstreamUnavailable("MQTT broker not connected")
        body = json.dumps({"token": self.token, "points": points}).encode()
        info = self.link.client.publish(self.topic, body, qos=1)
        try:
            info.wait_for_publish(timeout=self.timeout)
        except (RuntimeError, ValueError) as exc:  # not queued: the connection dropped
            raise UpstreamUnavailable(str(exc)) from None
        if not info.is_published():
            # The points stay in the buffer and are sent again; if paho also delivers its copy
            # later, the platform stores the point once and reports the other as a duplicate.
            raise UpstreamUnavailable("no PUBACK from the MQTT broker in time")
        return PublishResult(len(points), 0, [])

"""The MQTT bridge against this machine's real Mosquitto (127.0.0.1:1883)."""

from __future__ import annotations

import os
import queue
import time
import uuid
from datetime import timedelta

import orjson
import paho.mqtt.client as mqtt
import pytest
from django.utils import timezone

from apps.telemetry.models import TelemetryPoint
from apps.telemetry.mqtt_bridge import MqttBridge

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
HOST = os.environ.get("MQTT_HOST", "127.0.0.1")
SITE = f"test{uuid.uuid4().hex[:8]}"  # keeps this run's topics apart from anything else


def client(name: str) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{name}-{uuid.uuid4().hex[:6]}")
    c.connect(HOST, 1883)
    c.loop_start()
    return c


@pytest.fixture
def bridge():
    b = MqttBridge(host=HOST, client_id=f"bridge-{uuid.uuid4().hex[:6]}", flush_interval=0.05)
    b.start()
    assert b.connected.wait(10), "Mosquitto on 127.0.0.1:1883 is required"
    time.sleep(0.2)  # the subscription is acknowledged
    yield b
    b.stop()


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


BASE = timezone.now() - timedelta(minutes=5)


def points(node_id: int, n: int, offset: int = 0):
    base = BASE
    return [
        {
            "node": node_id,
            "time": (base + timedelta(milliseconds=100 * (i + offset))).isoformat(),
            "power_kw": 1.0,
        }
        for i in range(n)
    ]


def test_points_published_with_qos1_are_stored(nodes, bridge):
    (node, token), _ = nodes
    pub = client("pub")
    for chunk in range(5):
        body = {"token": token, "points": points(node.pk, 200, offset=chunk * 200)}
        pub.publish(
            f"factory/{SITE}/machine/{node.pk}/telemetry", orjson.dumps(body), qos=1
        ).wait_for_publish(5)
    assert wait_for(lambda: TelemetryPoint.objects.filter(node=node).count() == 1000)
    # A gateway that resends after a lost ack creates no duplicates.
    pub.publish(
        f"factory/{SITE}/machine/{node.pk}/telemetry",
        orjson.dumps({"token": token, "points": points(node.pk, 200)}),
        qos=1,
    ).wait_for_publish(5)
    assert wait_for(lambda: bridge.stats["duplicates"] >= 200)
    assert TelemetryPoint.objects.filter(node=node).count() == 1000
    pub.loop_stop()


def test_rejections_are_published_to_the_errors_topic(nodes, bridge):
    (node_a, token_a), (node_b, _token_b) = nodes
    errors: queue.Queue[dict] = queue.Queue()
    sub = client("sub")
    sub.on_message = lambda c, u, m: errors.put(orjson.loads(m.payload))
    sub.subscribe(f"factory/{SITE}/machine/+/errors", qos=1)
    time.sleep(0.3)
    pub = client("pub")
    topic_a = f"factory/{SITE}/machine/{node_a.pk}/telemetry"
    # a bad point among good ones; A's token on B's topic; an unknown token; not JSON
    good_and_bad = points(node_a.pk, 3) + [
        {"node": node_a.pk, "time": timezone.now().isoformat(), "temperature_c": 9999}
    ]
    pub.publish(topic_a, orjson.dumps({"token": token_a, "points": good_and_bad}), qos=1)
    pub.publish(
        f"factory/{SITE}/machine/{node_b.pk}/telemetry",
        orjson.dumps({"token": token_a, "points": points(node_b.pk, 1)}),
        qos=1,
    )
    pub.publish(topic_a, orjson.dumps({"token": "imw_nope", "points": points(node_a.pk, 1)}), qos=1)
    pub.publish(topic_a, b"not json", qos=1)
    received = [errors.get(timeout=10)["error"] for _ in range(4)]
    codes = sorted(e["code"] for e in received)
    assert codes == ["device_token_invalid", "forbidden", "invalid", "invalid"]
    point_error = next(e for e in received if e["details"])
    assert (
        point_error["details"]["index"] == 3 and "temperature_c" in point_error["details"]["errors"]
    )
    assert wait_for(lambda: TelemetryPoint.objects.filter(node=node_a).count() == 3)
    assert not TelemetryPoint.objects.filter(node=node_b).exists()
    sub.loop_stop()
    pub.loop_stop()

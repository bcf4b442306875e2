"""A poison message on the real Mosquitto (127.0.0.1:1883): the bridge rejects it on `.../errors`,
acknowledges it (the broker never hands it over again) and stores the good messages of the same
flush."""

from __future__ import annotations

import queue
import threading
import time
import uuid

import orjson
import paho.mqtt.client as mqtt
import pytest

from apps.telemetry.limits import MAX_BODY_BYTES
from apps.telemetry.models import TelemetryPoint
from apps.telemetry.mqtt_bridge import MqttBridge
from apps.vendors.models import FabricationNode
from apps.vendors.services import device_credential_issue, node_config_save, node_transition
from tests.fixtures.fleet import Fleet, approved_node
from tests.telemetry.test_mqtt_bridge import HOST, client, points, wait_for
from tests.telemetry.triggers import POISON_POWER_KW, refusing_trigger

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
SITE = f"poison{uuid.uuid4().hex[:8]}"


@pytest.fixture
def streaming(fleet: Fleet):
    node = approved_node(fleet, name="Mqtt-Poison")
    node_config_save(node=node, by=fleet.vendor, config={"a": 1})
    node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet.vendor, reason="up")
    _, token = device_credential_issue(node=node, by=fleet.vendor)
    return node, token


def start_bridge(client_id: str) -> MqttBridge:
    # A slow flush, so the three messages below are stored in one flush.
    bridge = MqttBridge(host=HOST, client_id=client_id, flush_interval=0.5)
    bridge.start()
    assert bridge.connected.wait(10), "Mosquitto on 127.0.0.1:1883 is required"
    assert bridge.subscribed.wait(10), "the broker never acknowledged the subscription"
    return bridge


def error_reports(name: str, topic: str) -> tuple[mqtt.Client, queue.Queue[dict]]:
    """A client collecting what the bridge publishes on `topic`, once its SUBACK is in."""
    reports: queue.Queue[dict] = queue.Queue()
    acknowledged = threading.Event()
    sub = client(name)
    sub.on_message = lambda c, u, m: reports.put(orjson.loads(m.payload))
    sub.on_subscribe = lambda *args: acknowledged.set()
    sub.subscribe(topic, qos=1)
    assert acknowledged.wait(10), "the broker never acknowledged the subscription"
    return sub, reports


def forget_session(client_id: str) -> None:
    """The bridge keeps a persistent session; drop it from the broker after the test."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    c.connect(HOST, 1883)
    c.disconnect()


def test_poison_message_is_rejected_acknowledged_and_does_not_sink_its_flush(streaming):
    node, token = streaming
    topic = f"factory/{SITE}/machine/{node.pk}/telemetry"
    sub, errors = error_reports("sub", f"factory/{SITE}/machine/+/errors")
    pub = client("pub")
    bridge_id = f"bridge-{uuid.uuid4().hex[:6]}"

    with refusing_trigger(error="unexpected"):
        bridge = start_bridge(bridge_id)
        try:
            # given: a good message, a poison one (the database raises on one of its points),
            # and another good one, published back to back (one flush)
            poison = points(node.pk, 2, offset=100)
            poison[1]["power_kw"] = POISON_POWER_KW
            for body in (points(node.pk, 3), poison, points(node.pk, 3, offset=10)):
                pub.publish(
                    topic, orjson.dumps({"token": token, "points": body}), qos=1
                ).wait_for_publish(5)

            # then: the good messages are stored, the poison one is reported on .../errors
            assert wait_for(lambda: TelemetryPoint.objects.filter(node=node).count() == 6)
            error = errors.get(timeout=10)["error"]
            assert error["code"] == "not_stored" and error["details"] == {"points": 2}
        finally:
            bridge.stop()

    # when: the bridge comes back with the same session (the trigger is gone: a redelivered
    # poison message would now be stored) and a marker message follows
    again = start_bridge(bridge_id)
    try:
        marker = points(node.pk, 1, offset=200)
        pub.publish(topic, orjson.dumps({"token": token, "points": marker}), qos=1)
        assert wait_for(lambda: TelemetryPoint.objects.filter(node=node).count() >= 7)
        time.sleep(0.6)  # one more flush for anything the broker sent before the marker
        # then: the poison message was acknowledged, never handed over again
        assert again.stats["messages"] == 1
        assert TelemetryPoint.objects.filter(node=node).count() == 7
        assert errors.empty()
    finally:
        again.stop()
        forget_session(bridge_id)
        sub.loop_stop()
        pub.loop_stop()


def test_an_oversized_message_is_refused_before_it_is_parsed(streaming):
    # given: a message of 40,000 nested objects (tiny on the wire, huge once parsed) and a
    # message over the byte limit, between two good ones
    node, token = streaming
    topic = f"factory/{SITE}/machine/{node.pk}/telemetry"
    sub, errors = error_reports("sub-big", f"factory/{SITE}/machine/{node.pk}/errors")
    pub = client("pub-big")
    bridge_id = f"bridge-{uuid.uuid4().hex[:6]}"
    bridge = start_bridge(bridge_id)
    try:
        nested = b'{"token": "' + token.encode() + b'", "points": [' + b"{}," * 40_000 + b"{}]}"
        padded = orjson.dumps({"token": token, "points": [{"pad": "x" * (MAX_BODY_BYTES + 1)}]})
        for body in (
            orjson.dumps({"token": token, "points": points(node.pk, 3)}),
            nested,
            padded,
            orjson.dumps({"token": token, "points": points(node.pk, 3, offset=10)}),
        ):
            pub.publish(topic, body, qos=1).wait_for_publish(5)

        # then: both are refused as too large, and the good ones stored
        codes = [errors.get(timeout=10)["error"]["code"] for _ in range(2)]
        assert codes == ["payload_too_large", "payload_too_large"]
        assert wait_for(lambda: TelemetryPoint.objects.filter(node=node).count() == 6)
        assert bridge.stats["rejected"] == 2
    finally:
        bridge.stop()
        forget_session(bridge_id)
        for c in (sub, pub):
            c.loop_stop()
            c.disconnect()

"""The gateway's MQTT uplink against the real Mosquitto on 127.0.0.1:1883: whatever arrives on
the errors topic (anyone may publish there on an open broker) must not end the uplink."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import paho.mqtt.client as mqtt
import pytest

from edge.deadletter import SUFFIX
from edge.gateway import from_config
from tests.telemetry.test_mqtt_bridge import wait_for

NODE = 7


@pytest.mark.integration
def test_forged_error_reports_neither_kill_the_uplink_nor_stop_the_stream(tmp_path):
    # given: a gateway whose upstream is the real broker, on a site of its own
    site = f"up{uuid.uuid4().hex[:8]}"
    gateway = from_config(
        {
            "upstream": {"mqtt": "mqtt://127.0.0.1:1883", "site": site},
            "buffer": {"path": str(tmp_path / "edge.sqlite3")},
            "devices": [
                {
                    "node": NODE,
                    "token": "imw_test",
                    "protocol": "opcua",
                    "url": "opc.tcp://127.0.0.1:1/imewe/",
                    "interval_ms": 100,
                    "signals": {"temperature_c": "ns=2;s=Temperature"},
                }
            ],
        }
    )
    link = gateway.mqtt
    assert link is not None
    attacker = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"forger-{site}")
    try:
        assert link.connected.wait(10), "Mosquitto on 127.0.0.1:1883 is required"
        attacker.connect("127.0.0.1", 1883)
        attacker.loop_start()
        topic = f"factory/{site}/machine/{NODE}/errors"
        # when: reports of every wrong shape arrive, including errors as a list (it crashed the
        # dead-letter writer on paho's network thread, which then never reconnected)
        forged = [
            {"error": {"code": "x", "details": {"errors": ["not", "a", "mapping"]}}},
            {"error": {"details": "text"}},
            {"error": ["x"]},
            [1, 2],
        ]
        for body in forged:
            attacker.publish(topic, orjson.dumps(body), qos=1).wait_for_publish(5)
        attacker.publish(topic, b"\x00not json", qos=1).wait_for_publish(5)
        assert wait_for(lambda: len(link.rejections) == len(forged) + 1)

        # then: the uplink still delivers, and each report was parked with its reason
        point = {"node": NODE, "time": datetime.now(UTC).isoformat(), "temperature_c": 20.0}
        result = gateway.forwarders[NODE].publisher.publish([point])
        assert result.accepted == 1
        assert link.client.is_connected()
        parked = (tmp_path / f"edge.sqlite3.{NODE}{SUFFIX}").read_text().splitlines()
        letters = [orjson.loads(line) for line in parked]
        assert len(letters) == len(forged) + 1
        assert all(letter["errors"] is None for letter in letters)
    finally:
        attacker.loop_stop()
        attacker.disconnect()
        link.close()

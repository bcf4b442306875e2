"""Bridges sharing the load through an MQTT shared subscription, on this machine's real Mosquitto
(127.0.0.1:1883). Every test has a topic root and a group of its own, so other test runs and
benchmarks on the same broker never see its messages, nor it theirs."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from django.db import connection

from apps.telemetry.models import TelemetryPoint
from apps.telemetry.mqtt_bridge import MqttBridge, client_id_for
from tests.telemetry.test_mqtt_bridge import (
    BASE,
    HOST,
    client,
    points,
    wait_for,
)
from tests.telemetry.test_mqtt_bridge_poison import forget_session

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ready(nodes):
    """The two nodes with their tokens. No point is stored first: two bridges then evaluate a
    node's first readings at once, which collided in alerts_evaluate until it inserted its
    states ON CONFLICT DO NOTHING (the tests below caught it)."""
    return nodes


def stored(node=None) -> int:
    """Points stored from the test's messages."""
    rows = TelemetryPoint.objects.filter(time__gte=BASE)
    return (rows if node is None else rows.filter(node=node)).count()


@pytest.fixture
def names():
    """A topic root, a share group and a client id prefix unique to the test."""
    tag = uuid.uuid4().hex[:8]
    return f"t{tag}", f"g{tag}", f"bridge-{tag}"


def start(client_id: str, root: str, group: str, **options) -> MqttBridge:
    bridge = MqttBridge(
        host=HOST, client_id=client_id, topic_root=root, share_group=group, **options
    )
    bridge.start()
    assert bridge.connected.wait(10), "Mosquitto on 127.0.0.1:1883 is required"
    assert bridge.subscribed.wait(10), "the broker never acknowledged the subscription"
    return bridge


def crash(bridge: MqttBridge) -> None:
    """What a killed process leaves: the connection drops without DISCONNECT, nothing pending
    is stored, nothing more is acknowledged."""
    bridge.client.loop_stop()
    sock = bridge.client.socket()
    assert sock is not None
    sock.close()
    bridge.stopping.set()
    bridge.full.set()
    bridge.flusher.join(5)


def publish(pub: mqtt.Client, root: str, node, token: str, count: int, offset: int) -> None:
    """`count` messages of 10 points each, points offset..offset+10*count."""
    topic = f"{root}/site/machine/{node.pk}/telemetry"
    for n in range(count):
        body = {"token": token, "points": points(node.pk, 10, offset=offset + 10 * n)}
        pub.publish(topic, orjson.dumps(body), qos=1).wait_for_publish(5)


def test_two_bridges_in_a_group_share_the_messages(ready, names):
    # given: two bridges in one group
    (node_a, token_a), (node_b, token_b) = ready
    root, group, prefix = names
    first = start(f"{prefix}-0", root, group, flush_interval=0.05)
    second = start(f"{prefix}-1", root, group, flush_interval=0.05)
    pub = client("pub-shared")
    try:
        # when: 40 messages of 10 points go out, for two nodes
        publish(pub, root, node_a, token_a, 20, 0)
        publish(pub, root, node_b, token_b, 20, 0)

        # then: every point is stored once, each message handled by one bridge, both busy
        assert wait_for(lambda: stored() == 400)
        assert wait_for(lambda: first.stats["accepted"] + second.stats["accepted"] == 400)
        assert first.stats["messages"] + second.stats["messages"] == 40
        assert first.stats["messages"] > 0 and second.stats["messages"] > 0
        assert first.stats["duplicates"] == second.stats["duplicates"] == 0
    finally:
        for bridge in (first, second):
            bridge.stop()
            forget_session(bridge.client_id)
        pub.loop_stop()


@pytest.mark.kills_a_thread(1)  # the dead bridge's network thread, with its connection
def test_a_bridge_that_dies_loses_nothing_it_held_or_was_sent_while_away(ready, names):
    (node, token), _ = ready
    root, group, prefix = names
    # given: two bridges in a group; the second never stores before it dies (its flush would
    # come after a minute), so every message it got is unacknowledged when it goes
    first = start(f"{prefix}-0", root, group, flush_interval=0.05)
    second = start(
        f"{prefix}-1", root, group, flush_interval=60, max_points=100_000, flush_messages=1000
    )
    pub = client("pub-crash")
    try:
        publish(pub, root, node, token, 20, 0)
        assert wait_for(lambda: first.stats["messages"] + second.stats["messages"] == 20)
        held = second.stats["messages"]
        assert held > 0 and second.stats["accepted"] == 0

        # when: it dies, 20 more messages go out while it is away, then it comes back with
        # the same client id
        crash(second)
        publish(pub, root, node, token, 20, 200)
        assert wait_for(lambda: first.stats["messages"] >= 20 - held + 1)
        back = start(f"{prefix}-1", root, group, flush_interval=0.05)
        second = back

        # then: all 400 points are stored, once; the returned bridge stored what the dead one
        # held unacknowledged (the broker hands a session's messages to no other member)
        assert wait_for(lambda: stored(node) == 400)
        assert wait_for(lambda: first.stats["accepted"] + back.stats["accepted"] == 400)
        assert back.stats["messages"] >= held
    finally:
        for bridge in (first, second):
            bridge.stop()
            forget_session(bridge.client_id)
        pub.loop_stop()


def test_retiring_a_bridge_stores_what_its_session_holds_and_leaves_the_group(ready, names):
    (node, token), _ = ready
    root, group, prefix = names
    # given: a bridge of the group that went away with messages waiting in its session
    first = start(f"{prefix}-0", root, group, flush_interval=0.05)
    gone = start(f"{prefix}-1", root, group, flush_interval=0.05)
    gone.stop()
    pub = client("pub-retire")
    try:
        publish(pub, root, node, token, 20, 0)
        assert wait_for(lambda: first.stats["messages"] > 0)

        # when: it is retired
        retiring = MqttBridge(
            host=HOST, client_id=gone.client_id, topic_root=root, share_group=group
        )
        assert retiring.retire(quiet_s=1.0, timeout_s=30)

        # then: what waited for it is stored, and later messages all go to the bridge left
        assert retiring.stats["messages"] > 0
        assert wait_for(lambda: stored(node) == 200)
        before = first.stats["messages"]
        publish(pub, root, node, token, 10, 200)
        assert wait_for(lambda: stored(node) == 300)
        assert first.stats["messages"] == before + 10
    finally:
        first.stop()
        forget_session(first.client_id)
        forget_session(gone.client_id)
        pub.loop_stop()


def test_small_messages_are_stored_without_waiting_for_the_flush_timer(ready, names):
    # given: a bridge whose timer would flush only after a minute, and more one-point messages
    # than the 20 unacknowledged ones Mosquitto sends a client at a time
    (node, token), _ = ready
    root, group, prefix = names
    bridge = start(f"{prefix}-0", root, group, flush_interval=60)
    pub = client("pub-small")
    try:
        topic = f"{root}/site/machine/{node.pk}/telemetry"
        for n in range(50):
            body = {"token": token, "points": points(node.pk, 1, offset=n)}
            pub.publish(topic, orjson.dumps(body), qos=1).wait_for_publish(5)

        # then: far more than one window's worth is stored long before the timer
        assert wait_for(lambda: stored(node) >= 40)
    finally:
        bridge.stop()
        forget_session(bridge.client_id)
        pub.loop_stop()


def test_client_ids_are_unique_per_index_and_stable_across_restarts():
    host = socket.gethostname()
    assert client_id_for(index=0) == f"imewe-bridge-{host}-0" == client_id_for(index=0)
    assert client_id_for(index=1) != client_id_for(index=0)
    assert client_id_for(prefix="imewe-bridge", index=3) == "imewe-bridge-3"


def test_the_command_runs_n_bridges_with_distinct_ids_that_share_the_load(ready, names, tmp_path):
    # given: `mqtt_bridge --processes 2` on this run's test database
    (node, token), _ = ready
    root, group, prefix = names
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "imewe.settings_test",
        "IMEWE_LIVE_TEST_DB": str(connection.settings_dict["NAME"]),
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "text",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "bridges.log"
    command = [sys.executable, "manage.py", "mqtt_bridge", "--processes", "2"]
    command += ["--client-id", prefix, "--share-group", group, "--topic-root", root]
    command += ["--flush-ms", "50"]
    with log_path.open("wb") as log:
        supervisor = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    pub = client("pub-command")
    try:
        assert wait_for(
            lambda: log_path.read_text().count("subscribed to $share/") == 2, timeout=90
        ), log_path.read_text()

        # when: 20 messages go out; bridge 0 is killed and 20 more go out while it is away;
        # then the supervisor is told to stop
        publish(pub, root, node, token, 20, 0)
        assert wait_for(lambda: stored(node) == 200)
        os.kill(child_with_index(supervisor.pid, 0), signal.SIGKILL)
        publish(pub, root, node, token, 20, 200)
        assert wait_for(lambda: stored(node) == 400, timeout=90), log_path.read_text()
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0

        # then: the killed bridge was restarted with its id and stored its share of what was
        # sent while it was away; both ids handled messages and stopped cleanly
        text = log_path.read_text()
        assert f"MQTT bridge {prefix}-0 exited (-9)" in text
        assert text.count("subscribed to $share/") == 3
        handled = {
            m[0]: int(m[1]) for m in re.findall(r"bridge (\S+) stopped: \{'messages': (\d+)", text)
        }
        assert set(handled) == {f"{prefix}-0", f"{prefix}-1"}, text
        assert min(handled.values()) > 0, handled
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        for index in (0, 1):
            forget_session(f"{prefix}-{index}")
        pub.loop_stop()


def child_with_index(parent: int, index: int) -> int:
    """The pid of the supervisor's child running `--index <index>`."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    for pid in children:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if args[args.index(b"--index") + 1] == str(index).encode():
            return int(pid)
    raise AssertionError(f"no child with --index {index} among {children}")

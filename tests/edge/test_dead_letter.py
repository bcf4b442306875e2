"""One bad point must not block a machine: against a real platform server, the forwarder finds
the point that makes every batch holding it fail, parks it in the dead-letter file with a local
alert, and delivers every other point. A platform that fails for everything parks nothing."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.telemetry.models import TelemetryPoint
from apps.vendors.models import FabricationNode
from apps.vendors.services import device_credential_issue, node_config_save, node_transition
from edge.buffer import SqliteBuffer
from edge.deadletter import SUFFIX
from edge.forwarder import Forwarder
from edge.gateway import Gateway
from edge.publishers import HttpsBatchPublisher
from tests.conftest import free_port
from tests.fixtures.fleet import Fleet, approved_node
from tests.telemetry.triggers import POISON_POWER_KW, refusing_trigger


@pytest.fixture
def streaming(fleet: Fleet):
    node = approved_node(fleet, name="Edge-Poison")
    node_config_save(node=node, by=fleet.vendor, config={"a": 1})
    node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet.vendor, reason="up")
    _, token = device_credential_issue(node=node, by=fleet.vendor)
    return node, token


def produce(node_id: int, count: int) -> list[dict]:
    base = timezone.now().replace(microsecond=0) - timedelta(minutes=30)
    return [
        {
            "node": node_id,
            "time": (base + timedelta(milliseconds=100 * i)).isoformat(),
            "power_kw": 1.0 + i / 1000,
        }
        for i in range(count)
    ]


def drain_until_done(forwarder: Forwarder, rounds: int = 12) -> list[bool]:
    """What drain() answered, round after round (the gateway calls it every forward_every_s)."""
    answers = []
    for _ in range(rounds):
        answers.append(forwarder.drain())
        if answers[-1]:
            break
    return answers


def test_a_poison_point_is_parked_and_every_other_point_delivered(live_server, streaming, tmp_path):
    # given: 120 points; the platform's database raises (HTTP 500) on two of them
    node, token = streaming
    points = produce(node.pk, 120)
    for index in (37, 90):
        points[index]["power_kw"] = POISON_POWER_KW
    buffer_path = tmp_path / "edge.sqlite3"
    forwarder = Forwarder(
        SqliteBuffer(buffer_path),
        HttpsBatchPublisher(live_server.url, token, timeout=10),
        batch_size=50,
        max_attempts=3,
    )
    gateway = Gateway(devices=[], forwarders={node.pk: forwarder})
    forwarder.on_dead_letter = functools.partial(gateway.dead_lettered, node.pk)
    forwarder.enqueue(points)

    # when: the gateway keeps forwarding
    with refusing_trigger(error="unexpected"):
        answers = drain_until_done(forwarder)

    # then: each poisoned batch is retried max_attempts times, then split; the rest arrives
    # rounds 1-2: batch 1 fails; 3: it is split, then batch 2 fails; 4: again; 5: split, done
    assert answers == [False, False, False, False, True], answers
    assert len(forwarder.buffer) == 0
    stored = TelemetryPoint.objects.filter(node=node)
    assert stored.count() == 118
    assert not stored.filter(power_kw=POISON_POWER_KW).exists()
    # exactly the poison points are parked, with the reason and the time
    letters = forwarder.dead_letters.read()
    assert str(forwarder.dead_letters.path) == str(buffer_path) + SUFFIX
    assert [letter["point"] for letter in letters] == [points[37], points[90]]
    assert all("HTTP 500" in letter["reason"] and letter["time"] for letter in letters)
    # and a local alert was raised for each
    assert [(a.node, a.signal, a.value) for a in gateway.alerts] == [
        (node.pk, "telemetry", 1.0),
        (node.pk, "telemetry", 1.0),
    ]
    assert "parked in" in gateway.alerts[0].message


def test_points_rejected_in_a_207_are_parked_with_their_reasons(live_server, streaming, tmp_path):
    node, token = streaming
    points = produce(node.pk, 10)
    points[4]["extra"] = {"note": "a\u0000b"}
    forwarder = Forwarder(
        SqliteBuffer(tmp_path / "edge.sqlite3"),
        HttpsBatchPublisher(live_server.url, token, timeout=10),
    )
    forwarder.enqueue(points)

    assert forwarder.drain() is True

    assert TelemetryPoint.objects.filter(node=node).count() == 9
    [letter] = forwarder.dead_letters.read()
    assert letter["point"] == points[4]
    assert letter["reason"] == "rejected by the platform"
    assert "NUL character" in letter["errors"]["extra.note"]
    assert forwarder.stats.dead_lettered == 1


class AlwaysFailing(http.server.BaseHTTPRequestHandler):
    """A platform whose every answer is a 500 (its database is gone, say)."""

    requests = 0

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).requests += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"error": {"code": "server_error", "message": "boom"}}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_platform_failing_for_everything_parks_nothing(tmp_path):
    # given: a real HTTP server that answers 500 to every batch
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), AlwaysFailing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    forwarder = Forwarder(
        SqliteBuffer(tmp_path / "edge.sqlite3"),
        HttpsBatchPublisher(f"http://127.0.0.1:{server.server_address[1]}", "imw_x", timeout=5),
        batch_size=8,
        max_attempts=2,
    )
    forwarder.enqueue(produce(1, 20))
    try:
        # when: the forwarder tries, splits the batch after 2 failures, and tries again
        answers = drain_until_done(forwarder, rounds=6)
    finally:
        server.shutdown()
        server.server_close()

    # then: every part failed, so no point is blamed: all 20 stay buffered, nothing parked
    assert answers == [False] * 6
    assert forwarder.stats.splits == 3  # rounds 2, 4 and 6
    assert AlwaysFailing.requests == 6 + 3 * (2 * 8 - 2)  # whole batches + every split part
    assert len(forwarder.buffer) == 20
    assert forwarder.dead_letters.read() == [] and forwarder.stats.dead_lettered == 0


class Scripted(http.server.BaseHTTPRequestHandler):
    """A platform answering each request with the next (status, body) of `script`."""

    script: list[tuple[int, dict]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers["Content-Length"]))
        status, payload = type(self).script.pop(0)
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_split_cut_short_by_an_outage_parks_each_rejection_once(tmp_path):
    # given: a batch of 4 that fails with a 500 and is split; its first half is delivered with
    # one point rejected, then the platform becomes unavailable (503) for the second half;
    # on the next round the whole batch goes through, the same point rejected again
    rejected = {"accepted": 1, "duplicates": 0, "rejected": [{"index": 0, "errors": {"x": "bad"}}]}
    Scripted.script = [
        (500, {"error": {"code": "server_error", "message": "boom"}}),
        (207, rejected),
        (503, {"error": {"code": "unavailable", "message": "later"}}),
        (207, {**rejected, "accepted": 3}),
    ]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    forwarder = Forwarder(
        SqliteBuffer(tmp_path / "edge.sqlite3"),
        HttpsBatchPublisher(f"http://127.0.0.1:{server.server_address[1]}", "imw_x", timeout=5),
        batch_size=4,
        max_attempts=1,
    )
    points = produce(1, 4)
    forwarder.enqueue(points)
    try:
        # when: the first round is cut short, the second delivers
        answers = drain_until_done(forwarder, rounds=2)
    finally:
        server.shutdown()
        server.server_close()

    # then: everything is delivered and the rejected point was parked once, not once a round
    assert answers == [False, True] and Scripted.script == []
    assert len(forwarder.buffer) == 0
    parked = forwarder.dead_letters.read()
    assert [letter["point"] for letter in parked] == [points[0]]

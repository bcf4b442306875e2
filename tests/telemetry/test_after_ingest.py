"""The receivers of stored telemetry (threshold rules, material, battery) run beside the
request in a thread of the ingest process when TELEMETRY_RECEIVERS_IN_BACKGROUND is on, as in
production: they see each node's newest point, a flood of one node's requests costs one
evaluation per round, and one failure stops neither the thread nor other nodes."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.utils import timezone

from apps.maintenance.models import Alert, Ticket
from apps.telemetry import services
from apps.telemetry.after_ingest import ReceiverRunner
from tests.fixtures.live import Live

BASE = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


@dataclass
class Point:
    time: datetime


def at(second: int) -> Point:
    return Point(BASE + timedelta(seconds=second))


def test_a_busy_runner_keeps_only_each_nodes_newest_point():
    delivered: list[tuple[int, datetime]] = []
    first_taken, release = threading.Event(), threading.Event()

    def deliver(node_id: int, point: Point) -> None:
        first_taken.set()
        release.wait(5)
        delivered.append((node_id, point.time))

    runner = ReceiverRunner(deliver=deliver)
    runner.submit(1, at(0))
    assert first_taken.wait(5)  # the thread is inside the first delivery now
    for second in range(1, 50):  # requests keep coming meanwhile
        runner.submit(1, at(second))
    runner.submit(1, at(3))  # a late delivery never replaces a newer point
    runner.submit(2, at(7))
    release.set()
    assert runner.flush_now()
    assert delivered == [(1, at(0).time), (1, at(49).time), (2, at(7).time)]
    assert runner.delivered == 3 and runner.replaced == 49


def test_a_failing_delivery_is_logged_and_the_thread_goes_on(caplog):
    delivered: list[int] = []

    def deliver(node_id: int, point: Point) -> None:
        if node_id == 1:
            raise RuntimeError("receiver bug")
        delivered.append(node_id)

    runner = ReceiverRunner(deliver=deliver)
    runner.submit(1, at(0))
    runner.submit(2, at(0))
    assert runner.flush_now()
    runner.submit(3, at(1))
    assert runner.flush_now()
    assert delivered == [2, 3]
    assert "telemetry receivers failed for node 1" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_rules_judge_batch_api_points_beside_the_request(
    live: Live, client, settings, default_rules
):
    settings.TELEMETRY_RECEIVERS_IN_BACKGROUND = True
    node, token = live.nodes[0], live.tokens[0]
    start = timezone.now() - timedelta(minutes=10)
    delivered_before = services.receiver_runner.delivered
    for second in range(0, 60, 5):  # 60 s at 95 C, one request each: critical over 85 C
        body = {
            "points": [
                {
                    "node": node.pk,
                    "time": (start + timedelta(seconds=second)).isoformat(),
                    "temperature_c": 95.0,
                }
            ]
        }
        response = client.post(
            "/api/v1/telemetry/batch/",
            data=orjson.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Device {token}",
        )
        assert response.status_code == 200, response.content
    assert services.receiver_runner.flush_now()
    assert services.receiver_runner.delivered > delivered_before  # the thread judged them
    alert = Alert.objects.get(node=node)
    assert (alert.signal, alert.severity, alert.peak) == ("temperature_c", "critical", 95.0)
    assert Ticket.objects.filter(node=node, issue_type="overheating").count() == 1


def test_the_window_spaces_the_rounds_so_a_flood_is_judged_once_per_window():
    delivered: list[tuple[int, datetime]] = []
    runner = ReceiverRunner(deliver=lambda n, p: delivered.append((n, p.time)), window_s=2.0)
    runner.submit(1, at(0))  # a quiet node: judged at once
    assert runner.flush_now()
    assert delivered == [(1, at(0).time)]
    for second in range(1, 21):  # then 20 requests well within the window
        runner.submit(1, at(second))
    runner.submit(2, at(5))
    assert runner.flush_now(timeout=10)
    # one more round after the window: each node's newest point, once
    assert delivered[1:] == [(1, at(20).time), (2, at(5).time)]
    assert runner.delivered == 3

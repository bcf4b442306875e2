"""Ingest remembers for DEVICE_AUTH_CACHE_SECONDS that a node may stream instead of asking the
database on every request: a node decommissioned in this process is refused at once, one
decommissioned by another process (no signal here) within the TTL, and a refused node is never
remembered, so one put back in service streams at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.telemetry.services import telemetry_ingest
from apps.vendors.models import FabricationNode
from tests.fixtures.live import Live

pytestmark = pytest.mark.django_db


def ingest(node: FabricationNode, second: int) -> tuple[int, list[str]]:
    point = {
        "node": node.pk,
        "time": (timezone.now() - timedelta(minutes=5, seconds=-second)).isoformat(),
        "power_kw": 1.0,
    }
    with CaptureQueriesContext(connection) as captured:
        report = telemetry_ingest(points=[point], node_id=node.pk)
    return report.accepted, [q["sql"] for q in captured.captured_queries]


def node_reads(queries: list[str]) -> int:
    return sum('FROM "vendors_fabricationnode"' in sql for sql in queries)


def test_a_second_request_does_not_ask_whether_the_node_may_stream(live: Live):
    node = live.nodes[0]
    accepted, first = ingest(node, 0)
    assert accepted == 1 and node_reads(first) == 1
    accepted, second = ingest(node, 1)
    assert accepted == 1 and node_reads(second) == 0


def test_a_node_decommissioned_here_is_refused_at_once(live: Live):
    node = live.nodes[0]
    assert ingest(node, 0)[0] == 1
    node.status = FabricationNode.Status.DECOMMISSIONED
    node.save(update_fields=["status"])  # (a save: what node_transition does)
    assert ingest(node, 1)[0] == 0


def test_a_node_decommissioned_elsewhere_is_refused_within_the_ttl(live: Live, monkeypatch):
    clock = [1_000.0]
    monkeypatch.setattr("apps.telemetry.services.time.monotonic", lambda: clock[0])
    node = live.nodes[0]
    assert ingest(node, 0)[0] == 1
    # another process: no signal reaches this one
    FabricationNode.objects.filter(pk=node.pk).update(status=FabricationNode.Status.DECOMMISSIONED)
    assert ingest(node, 1)[0] == 1  # still remembered
    clock[0] += 5.1  # DEVICE_AUTH_CACHE_SECONDS
    assert ingest(node, 2)[0] == 0
    # refused nodes are not remembered: back in service elsewhere, it streams at once
    FabricationNode.objects.filter(pk=node.pk).update(status=FabricationNode.Status.IDLE)
    assert ingest(node, 3)[0] == 1

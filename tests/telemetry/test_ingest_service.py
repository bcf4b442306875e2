from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.telemetry.models import TelemetryPoint
from apps.telemetry.services import _store
from apps.telemetry.validation import CleanBatch, clean_point
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_config_save, node_transition
from tests.fixtures.fleet import Fleet, approved_node
from tests.fixtures.live import Live

pytestmark = pytest.mark.django_db


NOW = timezone.now()


def points(node_id: int, seconds: range):
    now = NOW
    base = now - timedelta(minutes=5)
    out = []
    for i in seconds:
        point, errors = clean_point(
            {"node": node_id, "time": (base + timedelta(seconds=i)).isoformat(), "power_kw": i},
            now=now,
        )
        assert not errors and point is not None
        out.append((i, point))
    return CleanBatch.of_points(node_id, out)


def test_store_survives_a_concurrent_writer(fleet: Fleet):
    """Rows another writer stored after our duplicate check are skipped, not an error: the
    bulk path (COPY on PostgreSQL) fails as a whole and the row-by-row fallback sorts it out."""
    node = approved_node(fleet)
    node_config_save(node=node, by=fleet.vendor, config={"a": 1})
    node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet.vendor, reason="up")
    first = points(node.pk, range(0, 10))
    stored, refused = _store(first)
    assert stored.all() and refused == {}
    both = points(node.pk, range(5, 15))
    stored, refused = _store(both)
    assert stored.tolist() == [False] * 5 + [True] * 5 and refused == {}
    assert TelemetryPoint.objects.filter(node=node).count() == 15
    assert connection.vendor in {"postgresql", "sqlite"}


def test_storage_layout_matches_the_backend():
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='telemetry_point'"
            )
            names = [row[0] for row in cursor.fetchall()]
        assert all(name.startswith("sqlite_autoindex") for name in names)  # the primary key only
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        has_timescale = cursor.fetchone() is not None
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'telemetry_point'")
        indexes = " ".join(row[0] for row in cursor.fetchall())
    if has_timescale:
        assert "time" in indexes  # hypertable's own index
    else:
        assert "USING brin" in indexes


def test_a_failing_receiver_is_logged_and_never_fails_the_stored_batch(
    live: Live, django_capture_on_commit_callbacks, caplog
):
    from apps.telemetry.services import telemetry_ingest, telemetry_ingested

    def broken(**kwargs):
        raise RuntimeError("a receiver's bug")

    node = live.nodes[0]
    telemetry_ingested.connect(broken, dispatch_uid="test.broken")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            when = (timezone.now() - timedelta(minutes=1)).isoformat()
            report = telemetry_ingest(
                points=[{"node": node.pk, "time": when, "power_kw": 1.0}],
                node_id=node.pk,
            )
    finally:
        telemetry_ingested.disconnect(dispatch_uid="test.broken")
    assert report.accepted == 1 and TelemetryPoint.objects.filter(node=node).count() == 1
    assert any("receiver" in r.message and r.exc_info for r in caplog.records)

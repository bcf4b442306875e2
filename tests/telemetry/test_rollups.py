"""Hour and day buckets read from the continuous aggregates (apps/telemetry/rollups.py) against
raw reads of the same rows, on TimescaleDB-shaped stand-ins (tests/telemetry/rollup_standin.py),
late data included; `latest_points` bounded in time; the plain PostgreSQL and SQLite paths."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.maintenance.services.training import hourly_means
from apps.telemetry import rollups
from apps.telemetry.models import TelemetryLateRange, TelemetryPoint
from apps.telemetry.selectors import SIGNALS, latest_points, point_buckets
from apps.telemetry.services import telemetry_ingest
from apps.telemetry.storage_layout import ROLLUPS
from apps.telemetry.tasks import rollups_refresh_late_task
from tests.conftest import jwt_client
from tests.fixtures.fleet import Fleet
from tests.fixtures.live import Live
from tests.telemetry import rollup_standin
from tests.telemetry.factories import TelemetryLateRangeFactory, TelemetryPointFactory

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (CI sets DATABASE_URL)"
)
NOW = timezone.now().replace(microsecond=0)
BASE = (NOW - timedelta(days=40)).replace(minute=0, second=0)
MIDNIGHT = (BASE + timedelta(days=4)).replace(hour=0)  # UTC: NOW is timezone.now()


def points_for(node_id: int, first: datetime, hours: float, every_s: int, seed: int) -> list:
    """Points every `every_s` seconds with uneven gaps (so hours hold different numbers of
    points and an average of averages would be wrong) and signals sometimes missing."""
    out, t, i = [], first, 0
    while t < first + timedelta(hours=hours):
        out.append(
            TelemetryPoint(
                node_id=node_id,
                time=t,
                temperature_c=None if (i + seed) % 5 == 0 else 20 + ((i * 37 + seed) % 23) / 3,
                power_kw=None if i % 3 == 0 else 1.5 + ((i + seed) % 11),
                vibration_mm_s=((i * 13) % 17) / 4,
                spindle_rpm=1000.0 * (i % 7),
            )
        )
        # uneven spacing: bursts, then gaps
        t += timedelta(seconds=every_s * (1 + (i * 7 + seed) % 5))
        i += 1
    return out


@pytest.fixture
def history(fleet: Fleet):
    from tests.fixtures.fleet import make_node

    mill, lathe = make_node(fleet, name="Mill-R"), make_node(fleet, name="Lathe-R")
    rows = [
        *points_for(mill.pk, BASE + timedelta(minutes=7), 24 * 38, 900, 1),
        *points_for(lathe.pk, BASE + timedelta(days=3, minutes=31), 30, 420, 2),
        # the last hours, not yet materialized: real-time aggregation serves them
        *points_for(mill.pk, NOW - timedelta(hours=3), 3, 60, 3),
    ]
    TelemetryPoint.objects.bulk_create(rows, ignore_conflicts=True)
    return [mill.pk, lathe.pk]


@pytest.fixture(autouse=True)
def forget_layout():
    """Each test asks the database afresh whether the aggregates exist."""
    rollups.rollups_forget()
    yield
    rollups.rollups_forget()


@pytest.fixture
def plain_layout(django_db_blocker):
    """The stand-ins take the aggregates' names: on a real TimescaleDB (README, "Telemetry tests
    against a real TimescaleDB") the real ones are there, and these tests do not apply."""
    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
            if cursor.fetchone():
                pytest.skip("the database has TimescaleDB's own continuous aggregates")


@pytest.fixture
def standin(plain_layout):
    rollup_standin.install()
    yield
    rollup_standin.uninstall()


RANGES = {
    "aligned": (BASE, NOW + timedelta(hours=1)),
    "ragged edges": (BASE + timedelta(hours=5, minutes=17), NOW - timedelta(minutes=43)),
    "inside one hour": (BASE + timedelta(days=2, minutes=3), BASE + timedelta(days=2, minutes=55)),
    # anchored at a UTC midnight, whatever the hour the run starts at (BASE follows NOW's hour:
    # offsets from BASE crossed midnight only for runs started between 00:00 and 03:00)
    "across midnight": (MIDNIGHT - timedelta(hours=3, minutes=-9), MIDNIGHT + timedelta(hours=2)),
}


SERVED_BY: dict[str, dict[str, list[str]]] = {
    "aligned": {"hour": ["telemetry_hourly"], "day": ["telemetry_daily", "telemetry_hourly"]},
    "ragged edges": {
        "hour": ["telemetry_hourly"],
        "day": ["telemetry_daily", "telemetry_hourly"],
    },
    "inside one hour": {"hour": [], "day": []},
    "across midnight": {"hour": ["telemetry_hourly"], "day": ["telemetry_hourly"]},
}


def raw_reads(node_ids: list[int], bucket: str, start: datetime, end: datetime) -> dict:
    assert not rollups.serves(bucket)
    return {
        (n, s): point_buckets(node_id=n, start=start, end=end, bucket=bucket, signal=s)
        for n in node_ids
        for s in SIGNALS
    }


def assert_same(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [r["bucket"] for r in got] == [r["bucket"] for r in want]
    for g, w in zip(got, want, strict=True):
        assert (g["count"], g["min"], g["max"]) == (w["count"], w["min"], w["max"]), g["bucket"]
        if w["avg"] is None:  # no value of this signal in the bucket
            assert g["avg"] is None and w["count"] == 0, g["bucket"]
        else:
            assert g["avg"] == pytest.approx(w["avg"], rel=1e-12), g["bucket"]


@postgres_only
@pytest.mark.django_db
@pytest.mark.parametrize("bucket", ["hour", "day"])
@pytest.mark.parametrize("span", list(RANGES))
def test_buckets_from_the_aggregates_equal_raw_reads(plain_layout, history, bucket, span):
    # given raw reads of uneven data, before the aggregates exist
    start, end = RANGES[span]
    want = raw_reads(history, bucket, start, end)
    assert any(len(rows) > 1 for rows in want.values()) or span == "inside one hour"
    # when the aggregates exist and the policy has materialized all but the last hours
    rollup_standin.install()
    for rollup in ROLLUPS:
        rollup_standin.materialize(rollup.view, BASE - timedelta(days=1), NOW - timedelta(hours=2))
    assert rollup_standin.materialized_rows("telemetry_hourly") > 24 * 30
    assert rollups.serves(bucket)
    with CaptureQueriesContext(connection) as queries:
        got = {
            (n, s): point_buckets(node_id=n, start=start, end=end, bucket=bucket, signal=s)
            for n in history
            for s in SIGNALS
        }
    # then the reads came from the aggregates, one query each, with the same figures
    assert len(queries) == len(got)
    for view in SERVED_BY[span][bucket]:
        assert all(view in q["sql"] for q in queries), view
    for key, rows in want.items():
        assert_same(got[key], rows)


@postgres_only
@pytest.mark.django_db
def test_day_buckets_weight_hours_by_their_counts(history, standin):
    # An average of the hourly averages differs from the day's average on this data.
    day = rollups.floor_to(BASE + timedelta(days=2), rollups.DAY)
    rollup_standin.materialize("telemetry_hourly", day - timedelta(days=1), day + timedelta(days=2))
    hours = point_buckets(
        node_id=history[0], start=day, end=day + timedelta(days=1), bucket="hour", signal="power_kw"
    )
    averages = [h["avg"] for h in hours if h["avg"] is not None]
    naive = sum(averages) / len(averages)
    # a range that starts mid-day: that day is served from hours, not from telemetry_daily
    (got,) = point_buckets(
        node_id=history[0],
        start=day + timedelta(minutes=1),
        end=day + timedelta(days=1),
        bucket="day",
        signal="power_kw",
    )
    raw = TelemetryPoint.objects.filter(
        node_id=history[0], time__gte=day + timedelta(minutes=1), time__lt=day + timedelta(days=1)
    ).exclude(power_kw=None)
    values = [float(v) for v in raw.values_list("power_kw", flat=True) if v is not None]
    assert got["count"] == len(values)
    assert got["avg"] == pytest.approx(sum(values) / len(values), rel=1e-12)
    assert not math.isclose(naive, got["avg"], rel_tol=1e-6)


@postgres_only
@pytest.mark.django_db
def test_training_hourly_means_from_the_aggregate_equal_raw_means(plain_layout, history):
    since = NOW - timedelta(days=35, minutes=13)
    want = hourly_means(since=since)
    rollup_standin.install()
    try:
        rollup_standin.materialize("telemetry_hourly", since, NOW - timedelta(hours=2))
        with CaptureQueriesContext(connection) as queries:
            got = hourly_means(since=since)
        assert any("telemetry_hourly" in q["sql"] for q in queries)
    finally:
        rollup_standin.uninstall()
    assert [(r["node_id"], r["hour"]) for r in got] == [(r["node_id"], r["hour"]) for r in want]
    for g, w in zip(got, want, strict=True):
        for s in SIGNALS:
            assert g[s] == (None if w[s] is None else pytest.approx(w[s], rel=1e-12)), s


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_late_points_are_rematerialized_by_the_refresh_task(plain_layout, live: Live):
    # given a node with 12 days of history, materialized by the policy up to an hour ago
    node = live.nodes[0]
    first = (NOW - timedelta(days=12)).replace(minute=0, second=0)
    TelemetryPoint.objects.bulk_create(points_for(node.pk, first, 12 * 24 - 2, 600, 4))
    rollup_standin.install()
    try:
        for rollup in ROLLUPS:
            rollup_standin.materialize(rollup.view, first, NOW - timedelta(hours=1))
        start, end = first, NOW + timedelta(hours=1)

        def reads(bucket: str) -> list[dict[str, Any]]:
            return point_buckets(
                node_id=node.pk, start=start, end=end, bucket=bucket, signal="temperature_c"
            )

        before = {b: reads(b) for b in ("hour", "day")}
        # when a gateway delivers points 10 days (beyond the policy's 7) and 2 days late
        late = [
            {
                "node": node.pk,
                "time": (NOW - timedelta(days=10, minutes=m, microseconds=250)).isoformat(),
                "temperature_c": 900.0,
            }
            for m in range(1, 90, 3)
        ] + [
            {
                "node": node.pk,
                "time": (NOW - timedelta(days=2, minutes=m, microseconds=250)).isoformat(),
                "temperature_c": 1.0,
            }
            for m in range(0, 30, 7)
        ]
        assert telemetry_ingest(points=late, node_id=node.pk).accepted == len(late)
        assert TelemetryLateRange.objects.count() == 1
        # then the aggregates do not show them yet (as TimescaleDB's would not) ...
        assert {b: reads(b) for b in ("hour", "day")} == before
        # ... and after the refresh task they do, exactly as the raw rows have them
        assert rollups_refresh_late_task.delay().get() == 2
        calls = rollup_standin.refresh_calls()
        assert [c[0] for c in calls] == ["telemetry_hourly", "telemetry_daily"]
        for _, lo, hi in calls:
            assert lo <= NOW - timedelta(days=10, minutes=90) and hi >= NOW - timedelta(days=2)
        assert not TelemetryLateRange.objects.exists()
        got = {b: reads(b) for b in ("hour", "day")}
    finally:
        rollup_standin.uninstall()
    for bucket in ("hour", "day"):
        assert got[bucket] != before[bucket]
        assert_same(
            got[bucket], raw_reads([node.pk], bucket, start, end)[(node.pk, "temperature_c")]
        )
    # nothing left to do
    assert rollups_refresh_late_task.delay().get() == 0


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_refresh_runs_outside_a_transaction_as_timescaledb_requires(plain_layout):
    rollup_standin.install()
    try:
        lo, hi = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
        # the stand-in refuses what TimescaleDB refuses: a refresh in a transaction block ...
        with (
            pytest.raises(DatabaseError, match="invalid transaction termination"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(rollups.REFRESH_SQL, ["telemetry_hourly", lo, hi])
        # ... and a window holding no whole bucket
        with (
            pytest.raises(DatabaseError, match="refresh window too small"),
            connection.cursor() as cursor,
        ):
            cursor.execute(rollups.REFRESH_SQL, ["telemetry_daily", lo, lo + timedelta(hours=5)])
        # the code's own statement, in autocommit, passes
        with connection.cursor() as cursor:
            cursor.execute(rollups.REFRESH_SQL, ["telemetry_daily", lo, hi])
        TelemetryLateRangeFactory.create(start=lo, end=hi)
        with transaction.atomic(), pytest.raises(RuntimeError, match="transaction"):
            rollups.late_ranges_refresh(now=NOW)
        assert rollups.late_ranges_refresh(now=NOW) == [
            ("telemetry_hourly", lo, hi),
            ("telemetry_daily", lo, hi),
        ]
    finally:
        rollup_standin.uninstall()


def test_refresh_windows_cover_whole_buckets_and_stop_at_the_policy_end():
    hourly, daily = ROLLUPS
    at = datetime(2026, 6, 10, 12, 30, tzinfo=UTC)
    ranges = [
        (datetime(2026, 6, 1, 5, tzinfo=UTC), datetime(2026, 6, 1, 7, tzinfo=UTC)),
        (datetime(2026, 6, 1, 6, tzinfo=UTC), datetime(2026, 6, 1, 9, tzinfo=UTC)),
        (datetime(2026, 6, 10, 10, tzinfo=UTC), datetime(2026, 6, 10, 13, tzinfo=UTC)),
    ]
    assert rollups.refresh_windows(ranges, hourly, now=at) == [
        (datetime(2026, 6, 1, 5, tzinfo=UTC), datetime(2026, 6, 1, 9, tzinfo=UTC)),
        # cut at now - 1 hour, whole hours: 11:00 to 12:00 is not materialized yet
        (datetime(2026, 6, 10, 10, tzinfo=UTC), datetime(2026, 6, 10, 11, tzinfo=UTC)),
    ]
    assert rollups.refresh_windows(ranges, daily, now=at) == [
        (datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 2, tzinfo=UTC))
    ]


@pytest.mark.django_db
def test_without_aggregates_nothing_is_noted_or_refreshed(plain_layout, live: Live):
    # Plain PostgreSQL and SQLite: reads group raw rows, ingest notes nothing, the task no-ops.
    rollups.rollups_forget()
    node = live.nodes[0]
    old = [{"node": node.pk, "time": (NOW - timedelta(days=20)).isoformat(), "power_kw": 3.0}]
    assert telemetry_ingest(points=old, node_id=node.pk).accepted == 1
    assert not TelemetryLateRange.objects.exists()
    assert rollups_refresh_late_task.delay().get() == 0
    assert not rollups.serves("hour")
    (row,) = point_buckets(
        node_id=node.pk, start=NOW - timedelta(days=21), end=NOW, bucket="day", signal="power_kw"
    )
    assert (row["avg"], row["count"]) == (3.0, 1)


# --- latest --------------------------------------------------------------------------------------


@pytest.fixture
def ages(fleet: Fleet):
    """Four nodes: last seen a minute, 3 days and 200 days ago, and never."""
    from tests.fixtures.fleet import make_node

    nodes = [make_node(fleet, name=f"Node-{i}") for i in range(4)]
    for node, age in zip(
        nodes, [timedelta(minutes=1), timedelta(days=3), timedelta(days=200)], strict=False
    ):
        TelemetryPoint.objects.bulk_create(
            [
                TelemetryPoint(node=node, time=NOW - age - timedelta(minutes=m), power_kw=float(m))
                for m in range(5)
            ]
        )
    return nodes


@pytest.mark.django_db
def test_latest_points_keep_their_shape_and_order(ages):
    ids = [n.pk for n in reversed(ages)]
    latest = latest_points(node_ids=ids, now=NOW)
    assert [p.node_id for p in latest] == [ages[2].pk, ages[1].pk, ages[0].pk]
    assert [p.time for p in latest] == [
        NOW - timedelta(days=200),
        NOW - timedelta(days=3),
        NOW - timedelta(minutes=1),
    ]
    assert all(isinstance(p, TelemetryPoint) and p.power_kw == 0.0 for p in latest)
    assert latest[0].extra == {}
    assert latest_points(node_ids=[]) == []


@postgres_only
@pytest.mark.django_db
def test_latest_points_is_one_bounded_query_for_many_nodes(fleet: Fleet, ages):
    # many nodes, all seen within a day: one query, bounded in time
    from tests.fixtures.fleet import make_node

    many = [ages[0].pk]
    for i in range(5):
        node = make_node(fleet, name=f"More-{i}")
        TelemetryPointFactory.create(node=node, time=NOW - timedelta(hours=i), power_kw=1.0)
        many.append(node.pk)
    with CaptureQueriesContext(connection) as queries:
        assert [p.node_id for p in latest_points(node_ids=many, now=NOW)] == many
    assert len(queries) == 1 and "p.time >" in queries[0]["sql"]
    # the window widens (30 days, then unbounded) only while nodes are missing
    with CaptureQueriesContext(connection) as queries:
        found = latest_points(node_ids=[n.pk for n in ages], now=NOW)
    assert len(found) == 3
    assert len(queries) == 3
    assert "p.time >" in queries[1]["sql"] and "p.time >" not in queries[2]["sql"]


# --- API -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_day_buckets_may_span_more_than_31_days(fleet: Fleet, live: Live):
    node = live.nodes[0]
    TelemetryPoint.objects.bulk_create(
        [
            TelemetryPoint(node=node, time=NOW - timedelta(days=d), power_kw=float(d))
            for d in (2, 100, 400)
        ]
    )
    client = jwt_client(fleet.vendor)

    def get(bucket: str, days: int) -> Any:
        query = urlencode(
            {
                "signal": "power_kw",
                "bucket": bucket,
                "start": (NOW - timedelta(days=days)).isoformat(),
                "end": NOW.isoformat(),
            }
        )
        return client.get(f"/api/v1/telemetry/nodes/{node.pk}/buckets/?{query}")

    wide = get("day", 500)
    assert wide.status_code == 200, wide.json()
    assert [b["count"] for b in wide.json()["buckets"]] == [1, 1, 1]
    assert get("hour", 40).status_code == 400
    too_wide = get("day", 2000)
    assert too_wide.status_code == 400
    assert "1830 days" in too_wide.json()["error"]["details"]["start"][0]


@postgres_only
@pytest.mark.django_db
def test_migration_notes_the_history_the_aggregates_were_created_without(history, plain_layout):
    # plain PostgreSQL: nothing to backfill
    assert not rollups.history_note(connection=connection, model=TelemetryLateRange)
    assert not TelemetryLateRange.objects.exists()
    # the aggregates exist (created WITH NO DATA): every stored hour is noted for the beat task
    rollup_standin.install()
    try:
        assert rollups.history_note(connection=connection, model=TelemetryLateRange)
    finally:
        rollup_standin.uninstall()
    (noted,) = TelemetryLateRange.objects.all()
    oldest = TelemetryPoint.objects.order_by("time").first()
    newest = TelemetryPoint.objects.order_by("-time").first()
    assert oldest and newest
    assert noted.start == rollups.floor_to(oldest.time, rollups.HOUR) <= oldest.time
    assert noted.end > newest.time

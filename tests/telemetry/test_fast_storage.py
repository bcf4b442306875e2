"""What the fast path stores (binary COPY built from columns on PostgreSQL, bulk insert on
SQLite) is what clean_point made of each point: every NULL layout, job ids, extras of every
value type; and duplicates are reported as before, whether they repeat a point of the same
request, one already stored, or arrive in a body that is decoded for the first time."""

from __future__ import annotations

import random
from datetime import timedelta

import orjson
import pytest
from django.db import connection
from django.utils import timezone

from apps.telemetry.models import SIGNAL_RANGES, TelemetryPoint
from apps.telemetry.services import (
    ASYNCHRONOUS_COMMIT_SQL,
    BatchShapeError,
    telemetry_ingest,
    telemetry_ingest_json,
)
from apps.telemetry.validation import SIGNALS, clean_point
from tests.fixtures.live import Live
from tests.telemetry.test_fast_validation import exact

pytestmark = pytest.mark.django_db

EXTRA_VALUES = [1.5, -0.0, 1e308, 18446744073709551615, -(2**63), True, False, "auto", "é 🙂", ""]


def varied_points(node_id: int, count: int, seed: int = 19) -> list[dict]:
    """Points with every mix of absent signals, jobs and extras (seeded, so failures repeat)."""
    rng = random.Random(seed)
    start = timezone.now() - timedelta(hours=1)
    points = []
    for i in range(count):
        point: dict = {"node": node_id, "time": (start + timedelta(milliseconds=i)).isoformat()}
        for signal in SIGNALS:
            if rng.random() < 0.5:
                low, high = SIGNAL_RANGES[signal]
                point[signal] = rng.choice([low, high, rng.uniform(low, high), int(high)])
        if rng.random() < 0.3:
            point["job_id"] = rng.choice([1, 2**63 - 1])
        if rng.random() < 0.4:
            point["extra"] = {f"x{k}": rng.choice(EXTRA_VALUES) for k in range(rng.randint(1, 4))}
        if len(point) == 2:
            point["power_kw"] = 1.0
        points.append(point)
    return points


def comparable(extra: dict) -> dict:
    return {k: float(v) if type(v) in (int, float) else (type(v), v) for k, v in extra.items()}


def stored_points(node_id: int) -> dict:
    rows = TelemetryPoint.objects.filter(node_id=node_id).order_by("time")
    return {row.time: row for row in rows}


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "objects"])
def test_every_column_is_stored_as_clean_point_made_it(live: Live, as_json):
    # given
    node = live.nodes[0]
    points = varied_points(node.pk, 400)

    # when
    if as_json:
        report = telemetry_ingest_json(body=orjson.dumps(points), node_id=node.pk)
    else:
        report = telemetry_ingest(points=points, node_id=node.pk)

    # then
    assert report.accepted == 400 and not report.rejected and not report.duplicates
    stored = stored_points(node.pk)
    now = timezone.now()
    for raw in points:
        point, errors = clean_point(raw, now=now)
        assert point is not None, errors
        row = stored[point.time]
        assert row.job_id == point.job_id
        values = tuple(getattr(row, signal) for signal in SIGNALS)
        assert repr(values) == repr(point.values)
        # jsonb keeps numbers as numeric (1e308 comes back as an int of 309 digits, -0.0 as
        # 0): numbers compare as floats, the rest by type and value.
        assert comparable(row.extra) == comparable(point.extra)


def test_duplicates_in_the_request_and_in_the_table_are_reported_by_index(live: Live):
    # given: 300 points stored
    node = live.nodes[0]
    points = varied_points(node.pk, 600)
    first = telemetry_ingest_json(body=orjson.dumps(points[:300]), node_id=node.pk)
    assert first.accepted == 300

    # when: a batch of 150 stored ones, 300 new ones, and one of the new ones again
    batch = points[150:] + [points[400]]
    report = telemetry_ingest_json(body=orjson.dumps({"points": batch}), node_id=node.pk)

    # then
    assert report.accepted == 300
    assert report.duplicates == [*range(150), 450]
    assert TelemetryPoint.objects.filter(node=node).count() == 600


def test_a_batch_sent_again_is_all_duplicates_and_the_newest_point_is_announced_once(
    live: Live, django_capture_on_commit_callbacks
):
    node = live.nodes[0]
    body = orjson.dumps(varied_points(node.pk, 50))
    with django_capture_on_commit_callbacks() as first:
        assert telemetry_ingest_json(body=body, node_id=node.pk).accepted == 50
    with django_capture_on_commit_callbacks() as again:
        report = telemetry_ingest_json(body=body, node_id=node.pk)
    assert report.accepted == 0 and report.duplicates == list(range(50))
    assert first and not again  # nothing new: nothing to announce


def test_the_newest_stored_point_is_the_one_announced(
    live: Live, django_capture_on_commit_callbacks
):
    from apps.telemetry.services import telemetry_ingested

    node = live.nodes[0]
    points = varied_points(node.pk, 30)
    points[7]["time"] = (timezone.now() + timedelta(minutes=1)).isoformat()  # the newest
    points[7]["extra"] = {"mark": "newest"}
    heard = []

    def hear(sender, node_id, point, **kwargs):
        heard.append((node_id, point))

    telemetry_ingested.connect(hear, dispatch_uid="test-newest")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            telemetry_ingest_json(body=orjson.dumps(points), node_id=node.pk)
    finally:
        telemetry_ingested.disconnect(dispatch_uid="test-newest")
    [(node_id, point)] = heard
    expected, _ = clean_point(points[7], now=timezone.now())
    assert node_id == node.pk and exact(point) == exact(expected)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "The batch is empty."),
        (b'{"points": []}', "The batch is empty."),
        (b'{"point": {}}', 'Send a JSON array of points, or {"points": [...]}.'),
        (b"7", 'Send a JSON array of points, or {"points": [...]}.'),
        (b"[{}]", None),
    ],
)
def test_a_body_without_points_is_refused_with_the_batch_api_words(live: Live, body, message):
    node = live.nodes[0]
    if message is None:
        report = telemetry_ingest_json(body=body, node_id=node.pk)
        assert report.rejected[0]["errors"] == clean_point({}, now=timezone.now())[1]
        return
    with pytest.raises(BatchShapeError, match=message.replace("[", r"\[")):
        telemetry_ingest_json(body=body, node_id=node.pk)


def test_too_many_points_or_no_json_are_refused(live: Live):
    node = live.nodes[0]
    with pytest.raises(BatchShapeError, match="At most 10000 points per batch; got 10001."):
        telemetry_ingest_json(body=orjson.dumps([{}] * 10_001), node_id=node.pk)
    with pytest.raises(orjson.JSONDecodeError):
        telemetry_ingest_json(body=b"[{", node_id=node.pk)
    assert connection.vendor in {"postgresql", "sqlite"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("synchronous", [True, False], ids=["durable", "asynchronous"])
def test_asynchronous_commit_applies_to_the_copys_own_transaction_only_when_configured(
    live: Live, settings, synchronous
):
    settings.TELEMETRY_SYNCHRONOUS_COMMIT = synchronous
    node = live.nodes[0]
    seen: list[str] = []

    def record(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    body = orjson.dumps(varied_points(node.pk, 50))
    with connection.execute_wrapper(record):
        report = telemetry_ingest_json(body=body, node_id=node.pk)
    assert report.accepted == 50
    assert TelemetryPoint.objects.filter(node_id=node.pk).count() == 50
    if connection.vendor != "postgresql":  # SQLite has no such setting: nothing asked
        assert ASYNCHRONOUS_COMMIT_SQL not in seen
        return
    assert (ASYNCHRONOUS_COMMIT_SQL in seen) is not synchronous
    # the setting lasted for that transaction only: the connection's next one is durable again
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"

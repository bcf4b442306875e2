"""One bad point must not block a machine: values PostgreSQL cannot store are rejected by index,
the good points of the same batch are stored, and nothing answers 500 for data."""

from __future__ import annotations

import orjson
import pytest
from django.utils import timezone

from apps.telemetry.models import TelemetryPoint
from apps.telemetry.services import telemetry_ingest
from tests.fixtures.live import Live
from tests.telemetry.test_ingest_api import at, device, post
from tests.telemetry.triggers import POISON_POWER_KW, refusing_trigger

pytestmark = pytest.mark.django_db

INT8_MAX = 2**63 - 1

# (raw JSON of a point's tail after node and time, the expected error field, words in the reason)
POISON = {
    "nul_in_value": (b'"extra": {"note": "a\\u0000b"}', "extra.note", "NUL character"),
    "nul_in_key": (b'"extra": {"no\\u0000te": 1}', "extra.no\\u0000te", "NUL character"),
    "long_key": (b'"extra": {"' + b"k" * 65 + b'": 1}', "extra." + "k" * 40 + "...", "1-64"),
    "empty_key": (b'"extra": {"": 1}', "extra.", "1-64"),
    "job_id_beyond_int8": (
        f'"job_id": {INT8_MAX + 1}, "power_kw": 1'.encode(),
        "job_id",
        "positive integer up to",
    ),
    "unit_not_a_string": (
        b'"units": {"temperature": ["F"]}, "temperature_c": 1',
        "units.temperature",
        "unknown unit",
    ),
    "time_megabyte": (None, "time", "too long"),
    "huge_after_unit_conversion": (
        b'"units": {"power": "MW"}, "power_kw": 1e306',
        "power_kw",
        "outside the physical range",
    ),
}


def point_bytes(node_id: int, seconds: int, tail: bytes | None) -> bytes:
    if tail is None:  # a time that is a megabyte long
        return b'{"node": %d, "time": "%s", "power_kw": 1}' % (node_id, b"2" * 1_000_000)
    return b'{"node": %d, "time": "%s", %s}' % (node_id, at(seconds).encode(), tail)


@pytest.mark.parametrize("case", list(POISON))
def test_poison_point_is_rejected_by_index_and_its_batch_is_stored(live: Live, case):
    # given: a poison point between two good ones, one of them with huge but storable numbers
    node = live.nodes[0]
    tail, field, reason = POISON[case]
    huge_but_fine = b'"extra": {"big": 1e308, "small": -1e308, "u64": 18446744073709551615}'
    body = b"[%s, %s, %s]" % (
        point_bytes(node.pk, 1, b'"power_kw": 2'),
        point_bytes(node.pk, 2, tail),
        point_bytes(node.pk, 3, huge_but_fine),
    )
    client = device(live.tokens[0])

    # when
    response = client.post("/api/v1/telemetry/batch/", body, content_type="application/json")

    # then: 207, index 1 rejected with a precise reason, the two good points stored
    assert response.status_code == 207, response.content[:500]
    report = response.json()
    assert report["accepted"] == 2
    [rejection] = report["rejected"]
    assert rejection["index"] == 1
    assert reason in rejection["errors"][field], rejection
    stored = TelemetryPoint.objects.filter(node=node).order_by("time")
    assert [p.power_kw for p in stored] == [2.0, None]
    assert float(stored[1].extra["big"]) == 1e308 and stored[1].extra["u64"] == 18446744073709551615

    # and the same point alone is a 400 in the error format, never a 500
    single = client.post(
        "/api/v1/telemetry/", point_bytes(node.pk, 4, tail), content_type="application/json"
    )
    assert single.status_code == 400
    error = single.json()["error"]
    assert error["code"] == "invalid" and reason in error["details"][field]


def test_lone_surrogates_are_rejected_and_echoed_safely(live: Live):
    """orjson refuses lone surrogates in a body; a service caller (the MQTT bridge, a command)
    can still hand them over: they are rejected, and the reasons stay valid UTF-8."""
    node = live.nodes[0]
    good = {"node": node.pk, "time": at(1), "power_kw": 1}
    bad_value = {"node": node.pk, "time": at(2), "extra": {"note": "x\ud800"}}
    bad_key = {"node": node.pk, "time": at(3), "extra": {"\udfff": 1}, "\ud800": 2}

    report = telemetry_ingest(points=[good, bad_value, bad_key], node_id=node.pk)

    assert report.accepted == 1
    reasons = {r["index"]: r["errors"] for r in report.rejected}
    assert "lone surrogate" in reasons[1]["extra.note"]
    assert "lone surrogate" in reasons[2]["extra.\\udfff"]
    assert "unknown field" in reasons[2]["\\ud800"]
    orjson.dumps(report.as_dict())  # raises on a lone surrogate
    assert TelemetryPoint.objects.filter(node=node).count() == 1


@pytest.fixture
def refusing_database():
    with refusing_trigger(error="data"):
        yield


def test_points_the_database_refuses_are_isolated_and_the_rest_stored(
    live: Live, refusing_database
):
    # given: 40 points, of which the database refuses indexes 0, 13 and 39
    node = live.nodes[0]
    batch = [{"node": node.pk, "time": at(i), "power_kw": 1 + i} for i in range(40)]
    for index in (0, 13, 39):
        batch[index]["power_kw"] = POISON_POWER_KW

    # when
    response = post(device(live.tokens[0]), "/api/v1/telemetry/batch/", batch)

    # then
    assert response.status_code == 207
    report = response.json()
    assert report["accepted"] == 37 and report["duplicates"] == 0
    assert [r["index"] for r in report["rejected"]] == [0, 13, 39]
    assert "the database refused this point" in report["rejected"][0]["errors"]["point"]
    assert TelemetryPoint.objects.filter(node=node).count() == 37
    assert not TelemetryPoint.objects.filter(node=node, power_kw=POISON_POWER_KW).exists()


def test_a_refused_single_point_is_a_400(live: Live, refusing_database):
    node = live.nodes[0]
    point = {"node": node.pk, "time": timezone.now().isoformat(), "power_kw": POISON_POWER_KW}
    response = post(device(live.tokens[0]), "/api/v1/telemetry/", point)
    assert response.status_code == 400
    assert "database refused" in response.json()["error"]["details"]["point"]

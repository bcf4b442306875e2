from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.test import Client
from django.utils import timezone

from apps.telemetry.models import TelemetryPoint
from apps.vendors.models import FabricationNode
from apps.vendors.services import (
    device_credential_revoke,
    node_transition,
)
from tests.conftest import jwt_client
from tests.fixtures.fleet import Fleet
from tests.fixtures.live import Live

pytestmark = pytest.mark.django_db


def device(token: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Device {token}")


# Once per run: computed per call, a second boundary crossed between two calls shifted every
# later time by a second (test_batch_with_already_stored_points_reports_duplicates flaked).
BASE = timezone.now().replace(microsecond=0) - timedelta(minutes=10)


def at(seconds: float) -> str:
    return (BASE + timedelta(seconds=seconds)).isoformat()


def post(client: Client, url: str, body, **extra):
    return client.post(url, orjson.dumps(body), content_type="application/json", **extra)


def test_single_point_is_stored_once(live: Live):
    node = live.nodes[0]
    client = device(live.tokens[0])
    point = {
        "node": node.pk,
        "time": at(0),
        "temperature_c": 41.5,
        "spindle_rpm": 9000,
        "extra": {"coolant": True},
    }
    first = post(client, "/api/v1/telemetry/", point)
    assert first.status_code == 201 and first.json()["accepted"] == 1
    again = post(client, "/api/v1/telemetry/", point)
    assert again.status_code == 200 and again.json()["duplicates"] == 1
    row = TelemetryPoint.objects.get(node=node)
    assert row.temperature_c == 41.5 and row.extra == {"coolant": True}


def test_mixed_batch_stores_good_points_and_reports_bad_ones_by_index(live: Live):
    node = live.nodes[0]
    batch = [
        {"node": node.pk, "time": at(1), "power_kw": 3.2},  # 0 ok
        {"node": node.pk, "time": at(2), "temperature_c": 5000},  # 1 out of range
        {"node": node.pk, "time": "yesterday", "power_kw": 1},  # 2 bad time
        {"node": node.pk, "time": at(3), "vibration_mm_s": "high"},  # 3 not a number
        {
            "node": node.pk,
            "time": at(4),
            "temperature_c": 212,
            "units": {"temperature": "F"},
        },  # 4 ok
        {"node": node.pk, "time": at(1), "power_kw": 3.3},  # 5 duplicate of 0 in the request
        {"node": node.pk, "time": at(5), "colour": "red"},  # 6 unknown field
        "not an object",  # 7
        {
            "node": node.pk,
            "time": (timezone.now() + timedelta(hours=1)).isoformat(),
            "power_kw": 1,
        },  # 8 future
    ]
    response = post(device(live.tokens[0]), "/api/v1/telemetry/batch/", batch)
    assert response.status_code == 207
    body = response.json()
    assert body["accepted"] == 2 and body["duplicate_indexes"] == [5]
    reasons = {r["index"]: r["errors"] for r in body["rejected"]}
    assert set(reasons) == {1, 2, 3, 6, 7, 8}
    assert "outside the physical range" in reasons[1]["temperature_c"]
    assert "colour" in reasons[6]
    assert "future" in reasons[8]["time"]
    stored = TelemetryPoint.objects.filter(node=node).order_by("time")
    assert [round(p.temperature_c or 0, 6) for p in stored] == [0, 100.0]  # 212 F -> 100 C


def test_batch_with_already_stored_points_reports_duplicates(live: Live):
    node = live.nodes[0]
    client = device(live.tokens[0])
    batch = [{"node": node.pk, "time": at(i), "power_kw": i} for i in range(50)]
    assert post(client, "/api/v1/telemetry/batch/", batch).json()["accepted"] == 50
    overlap = [{"node": node.pk, "time": at(i), "power_kw": i} for i in range(40, 60)]
    body = post(client, "/api/v1/telemetry/batch/", {"points": overlap}).json()
    assert body["accepted"] == 10 and body["duplicates"] == 10
    assert TelemetryPoint.objects.filter(node=node).count() == 60


def test_gzip_body_of_ten_thousand_points(live: Live):
    node = live.nodes[1]
    start = timezone.now() - timedelta(hours=3)
    batch = [
        {
            "node": node.pk,
            "time": (start + timedelta(milliseconds=250 * i)).isoformat(),
            "vibration_mm_s": 1.5,
            "power_kw": 2.0,
        }
        for i in range(10_000)
    ]
    response = device(live.tokens[1]).post(
        "/api/v1/telemetry/batch/",
        gzip.compress(orjson.dumps(batch)),
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["accepted"] == 10_000
    assert TelemetryPoint.objects.filter(node=node).count() == 10_000
    too_many = batch + batch[:1]
    big = device(live.tokens[1]).post(
        "/api/v1/telemetry/batch/", orjson.dumps(too_many), content_type="application/json"
    )
    assert big.status_code == 400 and "10000" in big.json()["error"]["details"]["points"][0]


def test_corrupt_gzip_and_bad_json_are_clear_errors(live: Live):
    client = device(live.tokens[0])
    bad_gzip = client.post(
        "/api/v1/telemetry/batch/",
        b"not gzip",
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert bad_gzip.status_code == 400 and bad_gzip.json()["error"]["code"] == "parse_error"
    bad_json = client.post("/api/v1/telemetry/batch/", b"[{", content_type="application/json")
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "parse_error"
    empty = post(client, "/api/v1/telemetry/batch/", [])
    assert empty.status_code == 400


def test_token_of_node_a_is_refused_for_node_b(live: Live):
    node_b = live.nodes[1]
    response = post(
        device(live.tokens[0]),
        "/api/v1/telemetry/",
        {"node": node_b.pk, "time": at(0), "power_kw": 1},
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {
        "node": f"this device may write only for node {live.nodes[0].pk}"
    }
    assert not TelemetryPoint.objects.exists()


def test_revoked_or_unknown_token_is_refused(live: Live, fleet: Fleet):
    node = live.nodes[0]
    point = {"node": node.pk, "time": at(0), "power_kw": 1}
    credential = node.device_credentials.get(revoked_at__isnull=True)
    device_credential_revoke(credential=credential, by=fleet.vendor)
    response = post(device(live.tokens[0]), "/api/v1/telemetry/", point)
    assert (
        response.status_code == 401 and response.json()["error"]["code"] == "device_token_invalid"
    )
    assert post(device("imw_made-up"), "/api/v1/telemetry/", point).status_code == 401
    assert not TelemetryPoint.objects.exists()


@pytest.mark.parametrize("who", ["admin", "vendor", "operator", "designer"])
def test_user_credentials_cannot_ingest(live: Live, fleet: Fleet, who):
    node = live.nodes[0]
    response = jwt_client(fleet.user(who)).post(
        "/api/v1/telemetry/batch/", [{"node": node.pk, "time": at(0), "power_kw": 1}], format="json"
    )
    assert response.status_code == 403
    assert "device credentials" in response.json()["error"]["message"]
    assert post(Client(), "/api/v1/telemetry/", {"node": node.pk}).status_code == 401


def test_node_in_maintenance_still_streams_but_decommissioned_does_not(live: Live, fleet: Fleet):
    node = live.nodes[0]
    client = device(live.tokens[0])
    node_transition(
        node=node, to=FabricationNode.Status.MAINTENANCE, by=fleet.vendor, reason="belt"
    )
    assert (
        post(
            client, "/api/v1/telemetry/", {"node": node.pk, "time": at(0), "power_kw": 1}
        ).status_code
        == 201
    )
    node_transition(
        node=node, to=FabricationNode.Status.DECOMMISSIONED, by=fleet.vendor, reason="scrapped"
    )
    response = post(client, "/api/v1/telemetry/", {"node": node.pk, "time": at(1), "power_kw": 1})
    assert response.status_code == 401  # a decommissioned node's token no longer authenticates


def test_epoch_seconds_and_timezone_required(live: Live):
    node = live.nodes[0]
    client = device(live.tokens[0])
    epoch = datetime.now(UTC).timestamp() - 30
    assert (
        post(
            client, "/api/v1/telemetry/", {"node": node.pk, "time": epoch, "power_kw": 1}
        ).status_code
        == 201
    )
    naive = post(
        client,
        "/api/v1/telemetry/",
        {"node": node.pk, "time": "2026-11-23T10:00:00", "power_kw": 1},
    )
    assert naive.status_code == 400 and "timezone" in naive.json()["error"]["details"]["time"]

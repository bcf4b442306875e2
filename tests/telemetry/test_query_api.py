from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.http import StreamingHttpResponse
from django.utils import timezone

from apps.telemetry.services import telemetry_ingest
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_config_save, node_transition
from tests.conftest import jwt_client
from tests.fixtures.fleet import Fleet, approved_node

pytestmark = pytest.mark.django_db
END = timezone.now().replace(microsecond=0)
START = END - timedelta(hours=1)


@pytest.fixture
def streamed(fleet: Fleet):
    node = approved_node(fleet)
    node_config_save(node=node, by=fleet.vendor, config={"a": 1})
    node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet.vendor, reason="up")
    # One point a second for the last hour; temperature climbs 20 -> ~56 C.
    points = [
        {
            "node": node.pk,
            "time": (START + timedelta(seconds=i)).isoformat(),
            "temperature_c": 20 + i / 100,
            "power_kw": 2.0,
        }
        for i in range(3600)
    ]
    report = telemetry_ingest(points=points, node_id=node.pk)
    assert report.accepted == 3600
    return node


def q(**params: object) -> str:
    return urlencode({"start": START.isoformat(), "end": END.isoformat(), **params})


def test_raw_range_is_downsampled_server_side(fleet: Fleet, streamed):
    client = jwt_client(fleet.vendor)
    body = client.get(f"/api/v1/telemetry/nodes/{streamed.pk}/points/?{q(max_points=60)}").json()
    assert 55 <= body["count"] <= 61
    temps = [p["temperature_c"] for p in body["points"]]
    assert temps == sorted(temps) and 20 <= temps[0] < 21 and 55 < temps[-1] <= 56
    raw = client.get(f"/api/v1/telemetry/nodes/{streamed.pk}/points/?{q(max_points=5000)}").json()
    assert raw["count"] == 3600


def test_buckets_aggregate_per_minute(fleet: Fleet, streamed):
    body = (
        jwt_client(fleet.operator)
        .get(
            f"/api/v1/telemetry/nodes/{streamed.pk}/buckets/"
            f"?{q(signal='temperature_c', bucket='minute')}"
        )
        .json()
    )
    buckets = body["buckets"]
    assert 60 <= len(buckets) <= 61 and sum(b["count"] for b in buckets) == 3600
    full = [b for b in buckets if b["count"] == 60]
    assert all(b["min"] <= b["avg"] <= b["max"] for b in full)


def test_latest_and_csv(fleet: Fleet, streamed):
    client = jwt_client(fleet.admin)
    latest = client.get("/api/v1/telemetry/latest/").json()["results"]
    assert len(latest) == 1 and latest[0]["node"] == streamed.pk
    assert abs(latest[0]["temperature_c"] - (20 + 3599 / 100)) < 1e-6
    response = client.get(f"/api/v1/telemetry/nodes/{streamed.pk}/export.csv?{q()}")
    assert response["Content-Type"] == "text/csv"
    assert isinstance(response, StreamingHttpResponse)
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("time,temperature_c") and len(lines) == 3601


@pytest.mark.parametrize("who", ["rival", "designer", "engineer", "viewer"])
def test_users_without_rights_get_404_and_nothing_in_latest(fleet: Fleet, streamed, who):
    client = jwt_client(fleet.user(who))
    for path in ("points/", "buckets/?signal=power_kw", "export.csv"):
        assert client.get(f"/api/v1/telemetry/nodes/{streamed.pk}/{path}").status_code == 404
    assert client.get("/api/v1/telemetry/latest/").json()["results"] == []


def test_bad_query_parameters_are_explained(fleet: Fleet, streamed):
    client = jwt_client(fleet.vendor)
    base = f"/api/v1/telemetry/nodes/{streamed.pk}"
    bad = client.get(f"{base}/points/?start=yesterday&max_points=0").json()["error"]["details"]
    assert "start" in bad
    wide = client.get(
        f"{base}/points/?"
        + urlencode({"start": (END - timedelta(days=40)).isoformat(), "end": END.isoformat()})
    )
    assert "31 days" in wide.json()["error"]["details"]["start"][0]
    wrong = client.get(f"{base}/buckets/?signal=colour&bucket=week").json()["error"]["details"]
    assert set(wrong) == {"signal", "bucket"}
    assert client.get("/api/v1/telemetry/latest/?nodes=a,b").status_code == 400

"""The administrator's bulk path for past telemetry: older than the live window on purpose,
the live validation otherwise, bad points reported by index, nothing announced."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from apps.maintenance.models import Alert, SignalState
from apps.telemetry.models import TelemetryPoint
from apps.telemetry.services import telemetry_import_history, telemetry_ingest
from tests.fixtures.fleet import Fleet
from tests.fixtures.live import Live

pytestmark = pytest.mark.django_db

YEAR_AGO = timezone.now().replace(microsecond=0) - timedelta(days=400)


def old(minutes: float) -> str:
    return (YEAR_AGO + timedelta(minutes=minutes)).isoformat()


def test_year_old_points_are_imported_and_bad_ones_reported_by_index(
    live: Live, django_capture_on_commit_callbacks
):
    # given points of last year, one out of range, one far in the future, one unknown field
    node = live.nodes[0]
    points = [
        {"node": node.pk, "time": old(0), "temperature_c": 40.0},
        {"node": node.pk, "time": old(1), "temperature_c": 9999.0},
        {"node": node.pk, "time": old(2), "vibration_mm_s": 2.5, "extra": {"flow": 3.0}},
        {"node": node.pk, "time": (timezone.now() + timedelta(days=1)).isoformat(), "power_kw": 1},
        {"node": node.pk, "time": old(3), "colour": "red"},
    ]
    # when the administrator imports them
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        report = telemetry_import_history(points=points, node_id=node.pk)
    # then the good old points are stored with their times, the bad ones named by index
    assert report.accepted == 2
    assert [r["index"] for r in report.rejected] == [1, 3, 4]
    assert "temperature_c" in report.rejected[0]["errors"]
    assert report.rejected[1]["errors"]["time"].startswith("is in the future")
    stored = list(TelemetryPoint.objects.filter(node=node).order_by("time"))
    assert [p.time for p in stored] == [YEAR_AGO, YEAR_AGO + timedelta(minutes=2)]
    assert stored[1].extra == {"flow": 3.0}
    # history is not news: no live view, no rules ran
    assert callbacks == []
    assert not SignalState.objects.filter(node=node).exists()


def test_the_live_paths_still_refuse_year_old_points(live: Live):
    node = live.nodes[0]
    point = {"node": node.pk, "time": old(0), "temperature_c": 40.0}
    report = telemetry_ingest(points=[point], node_id=node.pk)
    assert report.accepted == 0
    assert "one-year ingest window" in report.rejected[0]["errors"]["time"]
    client = Client(HTTP_AUTHORIZATION=f"Device {live.tokens[0]}")
    response = client.post(
        "/api/v1/telemetry/batch/", orjson.dumps([point]), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert "one-year ingest window" in response.content.decode()
    assert not TelemetryPoint.objects.filter(node=node).exists()


def test_import_again_reports_duplicates_and_history_has_a_limit(live: Live):
    node = live.nodes[0]
    points = [{"node": node.pk, "time": old(m), "power_kw": 1.0 + m} for m in range(3)]
    assert telemetry_import_history(points=points, node_id=node.pk).accepted == 3
    again = telemetry_import_history(points=points, node_id=node.pk)
    assert again.accepted == 0 and again.duplicates == [0, 1, 2]
    ancient = {"node": node.pk, "time": "1980-01-01T00:00:00Z", "power_kw": 1.0}
    refused = telemetry_import_history(points=[ancient], node_id=node.pk)
    assert "history import window" in refused.rejected[0]["errors"]["time"]


def test_import_for_another_node_or_none_is_refused(live: Live):
    node, other = live.nodes
    point = {"node": other.pk, "time": old(0), "power_kw": 1.0}
    report = telemetry_import_history(points=[point], node_id=node.pk)
    assert report.accepted == 0 and "only for node" in report.rejected[0]["errors"]["node"]
    missing = telemetry_import_history(points=[point], node_id=10**9)
    assert missing.rejected[0]["errors"]["node"] == f"no node {10**9}"


def test_import_telemetry_command_reads_csv_with_extras(live: Live, tmp_path: Path, capsys):
    node = live.nodes[0]
    path = tmp_path / "historian.csv"
    path.write_text(
        "time,temperature_c,bearing_temp\n"
        f"{old(0)},40.5,61.0\n"
        f"{old(1)},,62.5\n"
        "not a time,41.0,60.0\n"
        f"{old(2)},42.0,\n"
    )
    call_command("import_telemetry", str(path), node=node.pk)
    out = capsys.readouterr().out
    assert "3 points stored, 0 already stored, 1 rejected of 4" in out
    assert "point 2: time:" in out
    rows = list(TelemetryPoint.objects.filter(node=node).order_by("time"))
    assert [(r.temperature_c, r.extra) for r in rows] == [
        (40.5, {"bearing_temp": 61.0}),
        (None, {"bearing_temp": 62.5}),
        (42.0, {}),
    ]
    assert not Alert.objects.exists()


def test_import_telemetry_command_reads_json_lines(live: Live, tmp_path: Path, capsys):
    node = live.nodes[0]
    path = tmp_path / "points.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps({"time": old(m), "power_kw": 2.0}) for m in range(5)))
    call_command("import_telemetry", str(path), node=node.pk)
    assert "5 points stored" in capsys.readouterr().out
    assert TelemetryPoint.objects.filter(node=node).count() == 5


def test_history_api_is_for_administrators_and_reports_by_index(live: Live, fleet: Fleet):
    from tests.conftest import jwt_client

    node = live.nodes[0]
    url = f"/api/v1/telemetry/nodes/{node.pk}/history/"
    body = {"points": [{"time": old(0), "power_kw": 2.0}, {"time": "yesterday", "power_kw": 1}]}
    # a vendor (even the node's own) may not; a device may not
    assert jwt_client(fleet.vendor).post(url, body, format="json").status_code == 403
    device = Client(HTTP_AUTHORIZATION=f"Device {live.tokens[0]}")
    assert device.post(url, orjson.dumps(body), content_type="application/json").status_code in (
        401,
        403,
    )
    # an administrator: the good point stored, the bad one named
    response = jwt_client(fleet.admin).post(url, body, format="json")
    assert response.status_code == 207, response.content
    assert response.json()["accepted"] == 1
    assert [r["index"] for r in response.json()["rejected"]] == [1]
    assert TelemetryPoint.objects.get(node=node).time == YEAR_AGO
    empty = jwt_client(fleet.admin).post(url, {"points": []}, format="json")
    assert empty.status_code == 400 and "points" in empty.content.decode()

"""Simulations on twins over the API: validated at once, run by the Celery task (eager here)
with progress saved and announced, results exported as JSON and CSV; who may run and see them."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.telemetry.services import telemetry_ingest
from apps.twins.models import Simulation
from apps.twins.services import simulation_run, twin_create
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_config_save, node_transition
from tests.fixtures.studio import Studio
from tests.twins.factories import SimulationFactory
from tests.websockets import GroupListener

pytestmark = pytest.mark.django_db

AGEING: dict[str, Any] = {
    "kind": "ageing",
    "params": {
        "avg_rpm": 12000,
        "load_n": 8000,
        "temperature_c": 70,
        "duty_cycle": 0.8,
        "horizon_h": 20000,
        "steps": 100,
        "samples": 200,
    },
}


def start(client, twin_id, body):
    return client.post(f"/api/v1/twins/{twin_id}/simulations/", body, format="json")


def test_ageing_runs_reports_progress_and_exports(
    studio: Studio, as_user, django_capture_on_commit_callbacks
):
    twin = studio.twin
    designer = as_user(studio.designer)

    with GroupListener(f"twin.{twin.pk}") as listener:
        with django_capture_on_commit_callbacks(execute=True):
            started = start(designer, twin.pk, AGEING)
        heard = listener.stop()  # what the twin's pages heard meanwhile
    assert started.status_code == 202, started.json()
    assert started.json()["status"] == "queued" and started.json()["kind"] == "ageing"

    sid = started.json()["id"]
    detail = designer.get(f"/api/v1/twins/{twin.pk}/simulations/{sid}/").json()
    assert detail["status"] == "succeeded" and detail["progress"] == 1.0, detail
    result = detail["result"]
    assert result["component"] == "spindle"  # taken from the twin's type
    assert len(result["trajectory"]) == 101
    band = result["uncertainty"]
    assert band["samples"] == 200
    assert band["failure_hours_p10"] <= band["failure_hours_p50"] <= band["failure_hours_p90"]
    assert result["predicted_failure_hours"] is not None
    assert result["constants"]["source"] == "defaults for a spindle"
    assert detail["summary"]["predicted_failure_hours"] == result["predicted_failure_hours"]

    events = [m["payload"] for m in heard if m["payload"]["type"] == "twin.simulation"]
    statuses = [e["status"] for e in events]
    assert statuses[0] == "queued" and "running" in statuses and statuses[-1] == "succeeded"
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress) and progress[-1] == 1.0

    as_csv = designer.get(f"/api/v1/twins/{twin.pk}/simulations/{sid}/export.csv")
    assert as_csv.status_code == 200 and as_csv["Content-Type"] == "text/csv"
    assert 'filename="twin-' in as_csv["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode())))
    assert len(rows) == 101
    assert set(rows[0]) >= {"time_hours", "wear_percent", "crack_length_mm", "failure_probability"}
    assert float(rows[-1]["time_hours"]) == 20000.0
    as_json = json.loads(
        designer.get(f"/api/v1/twins/{twin.pk}/simulations/{sid}/export.json").content
    )
    assert as_json["simulation"] == sid and as_json["trajectory"] == result["trajectory"]
    assert designer.get(f"/api/v1/twins/{twin.pk}/simulations/{sid}/export.xml").status_code == 404


def test_bad_parameters_come_back_at_once_per_field(studio: Studio, as_user):
    designer = as_user(studio.designer)
    twin = studio.twin
    missing = start(designer, twin.pk, {"kind": "ageing", "params": {"load_n": 10}})
    assert missing.status_code == 400
    assert set(missing.json()["error"]["details"]) == {
        "params.avg_rpm",
        "params.temperature_c",
        "params.duty_cycle",
    }
    out_of_range = start(
        designer,
        twin.pk,
        {"kind": "ageing", "params": {**AGEING["params"], "duty_cycle": 1.5, "horizon_h": 90000}},
    )
    assert out_of_range.status_code == 400
    details = out_of_range.json()["error"]["details"]
    assert set(details) == {"duty_cycle", "horizon_h"}
    assert "43,800" in details["horizon_h"][0]
    part = twin_create(by=studio.designer, name="Bracket", twin_type="part")
    no_component = start(designer, part.pk, AGEING)
    assert no_component.status_code == 400
    assert "component" in no_component.json()["error"]["details"]
    no_machine = start(designer, part.pk, {"kind": "scenarios", "params": {"hours": 24}})
    assert no_machine.status_code == 400
    assert "machine_kind" in no_machine.json()["error"]["details"]
    unknown = start(designer, twin.pk, {"kind": "scenarios", "params": {"scenarios": ["melted"]}})
    assert unknown.status_code == 400 and "params.scenarios" in unknown.json()["error"]["details"]
    assert start(designer, twin.pk, {"kind": "weather"}).status_code == 400
    assert Simulation.objects.count() == 0  # nothing half-started


def test_who_may_run_and_see_simulations(
    studio: Studio, as_user, django_capture_on_commit_callbacks
):
    twin = studio.twin
    with django_capture_on_commit_callbacks(execute=True):
        ran = start(as_user(studio.engineer), twin.pk, AGEING)  # same studio: may see it
    assert ran.status_code == 202, ran.json()
    sid = ran.json()["id"]
    viewer = as_user(studio.viewer)
    assert viewer.get(f"/api/v1/twins/{twin.pk}/simulations/").json()["count"] == 1
    refused = start(viewer, twin.pk, AGEING)
    assert refused.status_code == 403 and "simulations" in refused.json()["error"]["message"]
    outsider = as_user(studio.outsider)
    for url in (
        f"/api/v1/twins/{twin.pk}/simulations/",
        f"/api/v1/twins/{twin.pk}/simulations/{sid}/",
        f"/api/v1/twins/{twin.pk}/simulations/{sid}/export.csv",
    ):
        assert outsider.get(url).status_code == 404, url
    assert start(outsider, twin.pk, AGEING).status_code == 404
    # a simulation is reached only through its own twin
    other = twin_create(by=studio.designer, name="Other", twin_type="bearing")
    designer = as_user(studio.designer)
    assert designer.get(f"/api/v1/twins/{other.pk}/simulations/{sid}/").status_code == 404
    admin = as_user(studio.admin)
    assert admin.get(f"/api/v1/twins/{twin.pk}/simulations/{sid}/").status_code == 200


def test_a_person_has_a_limited_number_running(studio: Studio, as_user, settings):
    settings.TWINS_SIMULATIONS_PER_USER = 2
    designer = as_user(studio.designer)
    # without running the commit callbacks the runs stay queued
    assert start(designer, studio.twin.pk, AGEING).status_code == 202
    assert start(designer, studio.twin.pk, AGEING).status_code == 202
    third = start(designer, studio.twin.pk, AGEING)
    assert third.status_code == 409 and "2 simulations" in third.json()["error"]["message"]
    assert start(as_user(studio.engineer), studio.twin.pk, AGEING).status_code == 202


def test_scenarios_start_from_the_nodes_recent_telemetry(
    studio: Studio, as_user, django_capture_on_commit_callbacks
):
    node = studio.node
    node_config_save(node=node, by=studio.vendor, config={"a": 1})
    node_transition(node=node, to=FabricationNode.Status.IDLE, by=studio.vendor, reason="up")
    now = timezone.now()
    report = telemetry_ingest(
        points=[
            {
                "node": node.pk,
                "time": (now - timedelta(minutes=5)).isoformat(),
                "temperature_c": 40.0,
                "vibration_mm_s": 1.0,
            },
            {
                "node": node.pk,
                "time": now.isoformat(),
                "temperature_c": 61.5,
                "vibration_mm_s": 3.2,
                "power_kw": 6.0,
            },
        ],
        node_id=node.pk,
    )
    assert not report.rejected
    twin = twin_create(by=studio.vendor, name="Mill twin", twin_type="mill", node=node)
    vendor = as_user(studio.vendor)
    with django_capture_on_commit_callbacks(execute=True):
        ran = start(vendor, twin.pk, {"kind": "scenarios", "params": {"hours": 240}})
    assert ran.status_code == 202, ran.json()
    result = vendor.get(f"/api/v1/twins/{twin.pk}/simulations/{ran.json()['id']}/").json()
    assert result["status"] == "succeeded", result["error"]
    result = result["result"]
    assert result["machine_kind"] == node.kind
    assert result["machine_label"] == node.get_kind_display()
    # each scenario says what drives it; the page shows these sentences
    assert all(row["explanation"][0].startswith("Health ") for row in result["summary"])
    assert result["seed_source"].startswith(f"telemetry of {node.name}")
    normal = result["scenarios"]["normal"]
    # the window's median temperature (40 and 61.5), not the newest reading
    assert normal["series"][0]["temperature_c"] == pytest.approx(50.75, abs=0.05)
    assert result["seed_window"]["points"] == 2
    assert {"temperature_c", "vibration_mm_s", "power_kw"} <= set(normal["seed"]["from_seed"])
    health = {row["scenario"]: row["health_score_end"] for row in result["summary"]}
    assert set(health) == {"normal", "heavy_load", "overheated", "worn_bearings"}
    assert all(health[name] < health["normal"] for name in health if name != "normal")
    rows = list(
        csv.DictReader(
            io.StringIO(
                vendor.get(
                    f"/api/v1/twins/{twin.pk}/simulations/{ran.json()['id']}/export.csv"
                ).content.decode()
            )
        )
    )
    assert {r["scenario"] for r in rows} == set(health)

    # without telemetry (or when told not to use it) the scenario's defaults apply
    with django_capture_on_commit_callbacks(execute=True):
        plain = start(
            vendor, twin.pk, {"kind": "scenarios", "params": {"hours": 24, "use_telemetry": False}}
        )
    plain_result = vendor.get(f"/api/v1/twins/{twin.pk}/simulations/{plain.json()['id']}/")
    assert plain_result.json()["result"]["seed_source"] == "defaults"


def test_a_run_that_cannot_be_computed_fails_with_the_reason(studio: Studio):
    simulation = SimulationFactory.create(
        twin=studio.twin, params={**AGEING["params"], "temperature_c": -300}
    )
    simulation_run(pk=simulation.pk)
    simulation.refresh_from_db()
    assert simulation.status == "failed"
    assert "temperature_c" in simulation.error and "Traceback" not in simulation.error
    assert simulation.result is None and simulation.finished_at is not None


def test_a_redelivered_task_does_not_run_twice(studio: Studio):
    simulation = SimulationFactory.create(twin=studio.twin)
    simulation_run(pk=simulation.pk)
    simulation.refresh_from_db()
    finished = simulation.finished_at
    assert simulation.status == "succeeded"
    simulation_run(pk=simulation.pk)
    simulation.refresh_from_db()
    assert simulation.finished_at == finished


def test_the_twins_own_constants_override_the_defaults(
    studio: Studio, as_user, django_capture_on_commit_callbacks
):
    twin = twin_create(
        by=studio.designer,
        name="Tough bearing",
        twin_type="bearing",
        properties={"ageing_constants": {"weibull_eta_h": 90000}},
    )
    designer = as_user(studio.designer)
    with django_capture_on_commit_callbacks(execute=True):
        ran = start(designer, twin.pk, AGEING)
    result = designer.get(f"/api/v1/twins/{twin.pk}/simulations/{ran.json()['id']}/").json()
    assert result["result"]["constants"]["weibull_eta_h"] == 90000
    assert "ageing_constants (weibull_eta_h)" in result["result"]["constants"]["source"]
    bad = twin_create(
        by=studio.designer,
        name="Bad bearing",
        twin_type="bearing",
        properties={"ageing_constants": {"weibull_eta_h": "long", "colour": 1}},
    )
    refused = start(designer, bad.pk, AGEING)
    assert refused.status_code == 400
    message = refused.json()["error"]["details"]["ageing_constants"][0]
    assert "colour" in message and "weibull_eta_h must be numbers" in message

"""Physics scenarios start from a window of the node's telemetry (the last hour's load profile,
by medians), not from one reading: two runs 10 s apart on a steady node agree, the result page
says which window and how many readings it used, and an empty window says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from apps.telemetry.services import telemetry_ingest
from apps.twins import physics
from apps.twins.models import Simulation
from apps.twins.services import twin_create
from apps.twins.services.simulations import scenario_seed
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_config_save, node_transition
from tests.conftest import portal_client
from tests.fixtures.studio import Studio

pytestmark = pytest.mark.django_db
CYCLE_S, CUT_S, EVERY_S = 300, 180, 5  # 3 minutes cutting, 2 idling, a reading every 5 s


def in_service(studio: Studio) -> FabricationNode:
    node = studio.node
    node_config_save(node=node, by=studio.vendor, config={"a": 1})
    return node_transition(node=node, to=FabricationNode.Status.IDLE, by=studio.vendor, reason="up")


def steady_mill(node: FabricationNode, first: datetime, minutes: int) -> list[datetime]:
    """A mill cutting short parts all along: each 5-minute cycle cuts for 3 minutes (about
    5.2 kW, 8,000 rpm, 1.3-3.3 mm/s as the tool engages) and idles for 2 (0.6 kW, spindle
    stopped, 0.25 mm/s), with a little deterministic jitter. Returns the times of the readings."""
    points, times = [], []
    for i in range(minutes * 60 // EVERY_S):
        at = first + timedelta(seconds=EVERY_S * i)
        cutting = (i * EVERY_S) % CYCLE_S < CUT_S
        jitter = ((i * 37) % 11 - 5) / 100  # -0.05 .. 0.05
        points.append(
            {
                "node": node.pk,
                "time": at.isoformat(),
                "power_kw": (5.2 if cutting else 0.6) + jitter,
                "spindle_rpm": 8000.0 if cutting else 0.0,
                "vibration_mm_s": 1.3 + 2.0 * ((i * 7) % 10) / 9 if cutting else 0.25,
                "temperature_c": (44.0 if cutting else 43.0) + jitter,
            }
        )
        times.append(at)
    report = telemetry_ingest(points=points, node_id=node.pk)
    assert not report.rejected, report.rejected[:3]
    return times


def latest_reading_seed(node: FabricationNode, at: datetime) -> physics.Seed:
    """What scenarios started from before: the newest reading (the baseline the window beats)."""
    from apps.telemetry.models import TelemetryPoint

    point = TelemetryPoint.objects.filter(node=node, time__lte=at).order_by("-time").first()
    assert point is not None
    return physics.Seed(
        temperature_c=point.temperature_c,
        vibration_mm_s=point.vibration_mm_s,
        power_kw=point.power_kw,
        spindle_rpm=point.spindle_rpm,
    )


def test_two_seeds_ten_seconds_apart_on_a_steady_node_give_close_results(studio: Studio):
    # given: 90 minutes of a steady mill; t0 its last reading of a cut, t1 10 s later, idling
    node = in_service(studio)
    first = timezone.now() - timedelta(minutes=100)
    times = steady_mill(node, first, 90)
    t0 = max(t for t in times if (t - first).total_seconds() % CYCLE_S < CUT_S)
    t1 = t0 + timedelta(seconds=10)
    assert t1 <= times[-1]
    spec = physics.spec_for(node.kind, node.rated_power_kw)

    # when: the normal scenario runs from the window before each
    (seed0, window0), (seed1, window1) = (
        scenario_seed(node=node, end=end, minutes=60, spec=spec) for end in (t0, t1)
    )
    rul0, rul1 = (physics.run(spec, "normal", 720, seed)["rul_hours"] for seed in (seed0, seed1))

    # then: the same machine gives the same life, within 2 %, from ~720 readings each
    assert rul0 is not None and rul1 is not None
    assert abs(rul1 - rul0) / rul0 < 0.02, (rul0, rul1)
    assert window0["points"] == window1["points"] == 60 * 60 // EVERY_S
    assert window0["running"] == pytest.approx(0.6 * window0["points"], abs=2)
    assert seed0.power_kw == pytest.approx(5.2, abs=0.05)  # the cuts' load, not the idle one
    # ... where one reading each (the way scenarios started before) differs several times over
    single0, single1 = (
        physics.run(spec, "normal", 720, latest_reading_seed(node, at))["rul_hours"]
        for at in (t0, t1)
    )
    assert single0 is not None
    assert single1 is None or single1 > 3 * single0


def test_an_empty_window_runs_on_the_scenarios_conditions_and_says_why(
    studio: Studio, as_user, django_capture_on_commit_callbacks
):
    # given: a node whose last reading is three hours old
    node = in_service(studio)
    old = (timezone.now() - timedelta(hours=3)).replace(microsecond=0)
    telemetry_ingest(
        points=[{"node": node.pk, "time": old.isoformat(), "power_kw": 5.0}], node_id=node.pk
    )
    twin = twin_create(by=studio.vendor, name="Mill twin", twin_type="mill", node=node)
    vendor = as_user(studio.vendor)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        ran = vendor.post(
            f"/api/v1/twins/{twin.pk}/simulations/",
            {"kind": "scenarios", "params": {"hours": 24}},
            format="json",
        )
    detail = vendor.get(f"/api/v1/twins/{twin.pk}/simulations/{ran.json()['id']}/").json()

    # then: it ran, from the scenarios' own conditions, and says which window was empty
    assert detail["status"] == "succeeded", detail["error"]
    result = detail["result"]
    assert result["seed_source"].startswith(f"defaults (no telemetry from {node.name}")
    window = result["seed_window"]
    assert window["points"] == 0 and window["minutes"] == 60
    assert window["summary"].startswith(f"No telemetry from {node.name} in the 60 minutes from")
    assert (
        f"Its newest reading is from {old.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        in (window["summary"])
    )
    assert result["scenarios"]["normal"]["seed"]["from_seed"] == []
    page = portal_client(studio.vendor).get(f"/twins/{twin.pk}/simulations/{ran.json()['id']}/")
    assert window["summary"].encode() in page.content.replace(b"&#x27;", b"'")


def test_a_node_that_never_reported_is_named_as_such(studio: Studio):
    node = in_service(studio)
    spec = physics.spec_for(node.kind, node.rated_power_kw)
    seed, window = scenario_seed(node=node, end=timezone.now(), minutes=30, spec=spec)
    assert seed == physics.Seed(source=seed.source) and seed.source.startswith("defaults")
    assert window["summary"].endswith("It has never reported.")


def test_the_result_page_names_the_window_and_its_readings(
    studio: Studio, as_user, django_capture_on_commit_callbacks
):
    node = in_service(studio)
    steady_mill(node, timezone.now() - timedelta(minutes=40), 40)  # up to now
    twin = twin_create(by=studio.vendor, name="Mill twin", twin_type="mill", node=node)
    vendor = as_user(studio.vendor)
    with django_capture_on_commit_callbacks(execute=True):
        ran = vendor.post(
            f"/api/v1/twins/{twin.pk}/simulations/",
            {"kind": "scenarios", "params": {"hours": 24, "seed_minutes": 30}},
            format="json",
        )
    assert ran.status_code == 202, ran.json()
    result = vendor.get(f"/api/v1/twins/{twin.pk}/simulations/{ran.json()['id']}/").json()
    window = result["result"]["seed_window"]
    assert window["minutes"] == 30
    assert abs(window["points"] - 30 * 60 // EVERY_S) <= 1  # the readings of those 30 minutes
    summary = window["summary"]
    assert f"Started from {node.name}'s telemetry of the 30 minutes from" in summary
    assert f"{window['points']} readings, {window['running']} of them running" in summary
    assert f"power over {window['running']}" in summary
    page = portal_client(studio.vendor).get(f"/twins/{twin.pk}/simulations/{ran.json()['id']}/")
    assert summary.encode() in page.content.replace(b"&#x27;", b"'")


@pytest.mark.parametrize("minutes", [1, 2000, "an hour"])
def test_a_window_out_of_bounds_is_refused_by_name(studio: Studio, as_user, minutes):
    node = in_service(studio)
    twin = twin_create(by=studio.vendor, name="Mill twin", twin_type="mill", node=node)
    refused = as_user(studio.vendor).post(
        f"/api/v1/twins/{twin.pk}/simulations/",
        {"kind": "scenarios", "params": {"seed_minutes": minutes}},
        format="json",
    )
    assert refused.status_code == 400
    assert "seed_minutes" in str(refused.json())


def test_a_node_that_idled_through_the_window_runs_at_the_scenarios_load(studio: Studio):
    node = in_service(studio)
    first = timezone.now() - timedelta(minutes=30)
    report = telemetry_ingest(
        points=[
            {
                "node": node.pk,
                "time": (first + timedelta(seconds=60 * i)).isoformat(),
                "power_kw": 0.6,
                "spindle_rpm": 0.0,
                "vibration_mm_s": 0.3 + 0.01 * i,
                "temperature_c": 30.0 + i,
            }
            for i in range(21)
        ],
        node_id=node.pk,
    )
    assert not report.rejected
    spec = physics.spec_for(node.kind, node.rated_power_kw)
    seed, window = scenario_seed(node=node, end=timezone.now(), minutes=60, spec=spec)
    assert (window["points"], window["running"]) == (21, 0)
    assert seed.power_kw is None and seed.spindle_rpm is None  # idle says nothing of the load
    assert seed.temperature_c == 40.0 and seed.vibration_mm_s == pytest.approx(0.4)
    assert "none of them running" in window["summary"]
    assert "the scenarios' own load applies" in window["summary"]
    run = physics.run(spec, "normal", 24, seed)
    assert run["conditions"]["load_fraction"] == physics.SCENARIOS["normal"].load_fraction


def test_the_window_is_chosen_on_the_simulate_page(
    studio: Studio, django_capture_on_commit_callbacks
):
    node = in_service(studio)
    steady_mill(node, timezone.now() - timedelta(minutes=20), 20)
    twin = twin_create(by=studio.vendor, name="Mill twin", twin_type="mill", node=node)
    vendor = portal_client(studio.vendor)
    page = vendor.get(f"/twins/{twin.pk}/simulate/")
    assert b"Telemetry window (minutes)" in page.content
    form = {
        "kind": "scenarios",
        "scenario-scenarios": ["normal"],
        "scenario-hours": 24,
        "scenario-step_minutes": 10,
        "scenario-use_telemetry": "on",
        "scenario-seed_minutes": 15,
    }
    with django_capture_on_commit_callbacks(execute=True):
        started = vendor.post(f"/twins/{twin.pk}/simulate/", form)
    assert started.status_code == 302, started.content[:500]
    simulation = Simulation.objects.get(twin=twin)
    assert simulation.status == "succeeded", simulation.error
    assert simulation.result is not None
    assert simulation.result["seed_window"]["minutes"] == 15
    refused = vendor.post(f"/twins/{twin.pk}/simulate/", {**form, "scenario-seed_minutes": 2})
    assert b"Not started" in refused.content and Simulation.objects.filter(twin=twin).count() == 1

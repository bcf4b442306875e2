"""Scheduling and self-healing against the database: parts placed and explained, vendors see
the work on their nodes, parts move when a node goes to maintenance or falls silent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import Notification
from apps.jobs.models import Job, Part, Status
from apps.jobs.services import job_submit, part_transition, parts_heal, parts_schedule
from apps.telemetry.services import telemetry_ingest
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_transition
from tests.fixtures.shop import Shop

pytestmark = pytest.mark.django_db

PLA = {"material": "PLA", "process": "fdm", "size_x_mm": 60, "size_y_mm": 40, "size_z_mm": 30}


def submit(shop: Shop, parts, **fields) -> Job:
    return job_submit(by=shop.designer, title="Frame", parts=parts, **fields)


def test_parts_are_placed_spread_and_explained(shop: Shop, as_user):
    job = submit(
        shop,
        [
            {**PLA, "name": "arm-1"},
            {**PLA, "name": "arm-2"},
            {**PLA, "name": "base", "material": "steel", "process": "milling"},
        ],
    )
    plan = parts_schedule()
    assert sum(1 for a in plan.assignments if a.node) == 3
    job.refresh_from_db()
    assert job.status == Status.SCHEDULED
    parts = {p.name: p for p in job.parts.all()}
    printers = {shop.printer_a.pk, shop.printer_b.pk}
    assert {parts["arm-1"].assigned_node_id, parts["arm-2"].assigned_node_id} == printers  # swarm
    assert parts["base"].assigned_node_id == shop.mill.pk

    explained = as_user(shop.designer).get(f"/api/v1/jobs/{job.pk}/schedule/").json()
    arm = next(p for p in explained["parts"] if p["name"] == "arm-1")
    assert arm["node_name"] in {"Printer-A", "Printer-B"}
    assert {c["node_name"] for c in arm["candidates"]} == {"Printer-A", "Printer-B"}
    assert set(arm["weights"]) == {
        "capability",
        "capacity",
        "energy",
        "material",
        "proximity",
        "reliability",
    }
    assert arm["skipped"] == []  # every printer is healthy
    assert arm["start_at"] and arm["finish_at"] and "suitable node" in arm["reason"]

    # the vendor now sees the job (its parts are on their nodes); a rival vendor does not
    assert as_user(shop.vendor).get(f"/api/v1/jobs/{job.pk}/").status_code == 200
    assert as_user(shop.rival).get(f"/api/v1/jobs/{job.pk}/").status_code == 404
    assert as_user(shop.operator).get(f"/api/v1/jobs/{job.pk}/").status_code == 200  # site


def test_submission_queues_scheduling_after_commit(
    shop: Shop, as_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(shop.designer).post(
            "/api/v1/jobs/", {"title": "Now", "parts": [{**PLA, "name": "clip"}]}, format="json"
        )
    assert response.status_code == 201
    assert Job.objects.get(pk=response.json()["id"]).status == Status.SCHEDULED


def last_reason(part: Part) -> str:
    """Why the part last changed status (read again: the change happened elsewhere)."""
    change = Part.objects.get(pk=part.pk).history.last()
    assert change is not None
    return change.reason


def test_a_node_going_to_maintenance_hands_its_parts_to_another(shop: Shop):
    job = submit(shop, [{**PLA, "name": "arm"}])
    parts_schedule()
    part = job.parts.get()
    first = part.assigned_node
    assert first is not None
    node_transition(
        node=first, to=FabricationNode.Status.MAINTENANCE, by=shop.vendor, reason="belt"
    )
    assert parts_heal() == [part.pk]
    part.refresh_from_db()
    assert part.status == Status.VALIDATED and part.assigned_node is None
    parts_schedule()
    part.refresh_from_db()
    other = ({shop.printer_a.pk, shop.printer_b.pk} - {first.pk}).pop()
    assert part.status == Status.SCHEDULED and part.assigned_node_id == other
    history = list(part.history.values_list("from_status", "to_status", "reason"))
    assert (Status.SCHEDULED, Status.VALIDATED, f"node {first.name} is maintenance") in history
    note = Notification.objects.get(user=shop.designer, title__contains="is being moved")
    assert "belt" not in note.body and first.name in note.body


def test_a_silent_executing_node_loses_its_part(shop: Shop):
    job = submit(shop, [{**PLA, "name": "arm"}])
    parts_schedule()
    part = job.parts.get()
    for status in (Status.ASSIGNED, Status.IN_PROGRESS):
        part_transition(part=part, to=status, by=None, reason="node agent")
    now = timezone.now()
    node = part.assigned_node
    assert node is not None
    stamp = (now - timedelta(minutes=2)).isoformat()
    report = telemetry_ingest(
        points=[{"node": node.pk, "time": stamp, "power_kw": 0.2}], node_id=node.pk
    )
    assert report.accepted == 1
    assert parts_heal(now=now) == []  # two minutes is not silent
    assert parts_heal(now=now + timedelta(minutes=10)) == [part.pk]
    part.refresh_from_db()
    assert part.status == Status.VALIDATED
    assert "has sent nothing for 12 min" in last_reason(part)


def _running_part_with_readings(shop: Shop, *, every_s: float, count: int, now) -> Part:
    """A part running on its node, which reported `count` readings `every_s` apart, the last
    two minutes before `now`; the fleet monitor has learned its cadence from them."""
    from apps.maintenance.models import NodeHealth
    from apps.maintenance.services.monitor import fleet_monitor

    job = submit(shop, [{**PLA, "name": "arm"}])
    parts_schedule()
    part = job.parts.get()
    for status in (Status.ASSIGNED, Status.IN_PROGRESS):
        part_transition(part=part, to=status, by=None, reason="node agent")
    node = part.assigned_node
    assert node is not None
    last = now - timedelta(minutes=2)
    points = [
        {"node": node.pk, "time": (last - i * timedelta(seconds=every_s)).isoformat()}
        | {"power_kw": 0.2}
        for i in reversed(range(count))
    ]
    assert telemetry_ingest(points=points, node_id=node.pk).accepted == count
    fleet_monitor(now=now)
    assert NodeHealth.objects.get(node=node).cadence_s == every_s
    return part


def test_a_fast_node_is_silent_after_the_jobs_limit(shop: Shop, settings):
    settings.JOBS_NODE_SILENT_MINUTES = 5
    now = timezone.now()
    part = _running_part_with_readings(shop, every_s=2, count=30, now=now)
    assert parts_heal(now=now + timedelta(minutes=2)) == []  # four minutes is not silent
    assert parts_heal(now=now + timedelta(minutes=4)) == [part.pk]
    assert "has sent nothing for 6 min" in last_reason(part)


def test_a_node_that_reports_every_5_minutes_keeps_its_work_for_3_readings(shop: Shop, settings):
    # given: a node whose cadence the monitor learned as 5 minutes (offline after 3 of them)
    settings.JOBS_NODE_SILENT_MINUTES = 5
    settings.MAINTENANCE_OFFLINE_SAMPLES = 3
    now = timezone.now()
    part = _running_part_with_readings(shop, every_s=300, count=8, now=now)
    # then: 12 minutes without a reading are past the jobs limit but within its cadence's
    assert parts_heal(now=now + timedelta(minutes=10)) == []
    part.refresh_from_db()
    assert part.status == Status.IN_PROGRESS
    # and 16 minutes are not
    assert parts_heal(now=now + timedelta(minutes=14)) == [part.pk]
    assert "has sent nothing for 16 min" in last_reason(part)


def test_parts_that_no_working_node_can_take_wait_with_a_reason(shop: Shop):
    job = submit(shop, [{**PLA, "name": "arm"}])
    for key in ("printer_a", "printer_b"):
        node_transition(
            node=shop.node(key), to=FabricationNode.Status.MAINTENANCE, by=shop.vendor, reason="x"
        )
    parts_schedule()
    part = Part.objects.get(job=job)
    assert part.status == Status.VALIDATED
    assert part.placement["reason"] == "no suitable node available"


def test_a_long_run_is_split_into_lots_on_several_nodes_and_saved_whole(shop: Shop, as_user):
    job = submit(shop, [{**PLA, "name": "panel", "quantity": 5, "size_z_mm": 80}])
    lots = list(job.parts.order_by("lot"))
    assert [(p.lot, p.lots, p.quantity) for p in lots] == [(1, 2, 3), (2, 2, 2)]
    whole = lots[0].estimates["duration_h"] / 3 * 5
    assert lots[1].estimates["duration_h"] == pytest.approx(whole * 2 / 5, rel=1e-3)
    parts_schedule()
    placed = {p.assigned_node_id for p in job.parts.all()}
    assert placed == {shop.printer_a.pk, shop.printer_b.pk}  # in parallel

    template = as_user(shop.designer).post(
        f"/api/v1/jobs/{job.pk}/save-template/", {"name": "Panels"}, format="json"
    )
    assert [(p["name"], p["quantity"]) for p in template.json()["parts"]] == [("panel", 5)]


def test_energy_aware_timing_needs_a_deadline(shop: Shop, as_user):
    body = {"title": "Frame", "parts": [{**PLA, "name": "arm"}], "timing": "lowest_carbon"}
    response = as_user(shop.designer).post("/api/v1/jobs/", body, format="json")
    assert response.status_code == 400
    assert "deadline" in response.json()["error"]["details"]["timing"][0]
    body["deadline"] = (timezone.now() + timedelta(days=2)).isoformat()
    response = as_user(shop.designer).post("/api/v1/jobs/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["timing"] == "lowest_carbon"
    body["timing"] = "whenever"
    response = as_user(shop.designer).post("/api/v1/jobs/", body, format="json")
    assert response.status_code == 400 and "timing" in response.json()["error"]["details"]


def test_a_planned_maintenance_window_sends_overlapping_work_back_and_is_planned_around(
    shop: Shop, django_capture_on_commit_callbacks
):
    from apps.maintenance.models import MaintenanceWindow
    from apps.maintenance.services.windows import window_schedule

    # given a long part placed on one of the two printers
    job = submit(shop, [{**PLA, "name": "long", "size_x_mm": 150, "size_y_mm": 150}])
    parts_schedule()
    part = job.parts.get()
    first = part.assigned_node
    assert first is not None
    other = ({shop.printer_a.pk, shop.printer_b.pk} - {first.pk}).pop()
    # when its vendor plans maintenance on that printer starting before the part would finish
    starts = timezone.now() + timedelta(minutes=30)
    with django_capture_on_commit_callbacks(execute=True):
        window_schedule(
            by=shop.vendor,
            node=first,
            kind=MaintenanceWindow.Kind.SCHEDULED,
            starts_at=starts,
            ends_at=starts + timedelta(hours=200),
            reason="spindle bearing",
        )
    # then the part went back to the scheduler at once and now runs on the other printer
    part.refresh_from_db()
    assert part.status == Status.SCHEDULED
    assert part.assigned_node_id == other
    assert part.history.filter(reason__startswith="planned maintenance").exists()


def test_the_scheduler_keeps_new_work_out_of_planned_windows(shop: Shop):
    from apps.maintenance.models import MaintenanceWindow
    from apps.maintenance.services.windows import window_schedule

    now = timezone.now()
    for node in (shop.printer_a, shop.printer_b):
        window_schedule(
            by=shop.vendor,
            node=node,
            kind=MaintenanceWindow.Kind.SCHEDULED,
            starts_at=now + timedelta(hours=1),
            ends_at=now + timedelta(hours=5),
            reason="nozzle swap",
        )
    job = submit(shop, [{**PLA, "name": "long", "size_x_mm": 150, "size_y_mm": 150}])
    parts_schedule(now=now)
    part = job.parts.get()
    start, finish = part.planned_start, part.planned_finish
    assert start is not None and finish is not None
    assert finish - start > timedelta(hours=1)  # it cannot fit before the window ...
    assert start >= now + timedelta(hours=5) - timedelta(seconds=1)  # ... so it starts after it

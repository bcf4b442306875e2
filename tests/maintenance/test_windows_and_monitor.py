"""Maintenance windows move the node and its work; the fleet monitor scores health and marks
silent nodes offline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from apps.core.exceptions import Conflict
from apps.jobs.models import Status
from apps.jobs.services import job_submit, parts_schedule
from apps.maintenance.models import MaintenanceWindow, NodeHealth
from apps.maintenance.services import (
    fleet_monitor,
    health_score,
    ticket_raise,
    window_cancel,
    window_complete,
    window_schedule,
)
from apps.vendors.models import FabricationNode
from tests.fixtures.fleet import Fleet
from tests.fixtures.machines import in_service
from tests.fixtures.shop import PRINTER

PLA = {"material": "PLA", "process": "fdm", "size_x_mm": 60, "size_y_mm": 40, "size_z_mm": 30}


def hours(h: float):
    return timezone.now() + timedelta(hours=h)


def test_a_window_moves_the_nodes_work_elsewhere_and_completing_returns_it(
    fleet: Fleet, django_capture_on_commit_callbacks
):
    a = in_service(fleet, **PRINTER)
    b = in_service(fleet, **{**PRINTER, "name": "Printer-B"})
    job = job_submit(by=fleet.designer, title="Frame", parts=[{**PLA, "name": "arm"}])
    parts_schedule()
    part = job.parts.get()
    first = part.assigned_node
    assert first is not None
    ticket, _ = ticket_raise(
        node=first,
        issue_type="vibration",
        severity="critical",
        title="vibration",
        evidence={},
        suggested_action="",
    )
    # when: an emergency window starting now (self-healing runs on commit, eagerly in tests)
    with django_capture_on_commit_callbacks(execute=True):
        window = window_schedule(
            by=fleet.operator,
            node=first,
            kind="emergency",
            starts_at=hours(0),
            ends_at=hours(4),
            reason="bearing noise",
            ticket=ticket,
        )
    # then
    first.refresh_from_db()
    assert window.status == "active" and first.status == FabricationNode.Status.MAINTENANCE
    part.refresh_from_db()
    assert part.assigned_node_id == ({a.pk, b.pk} - {first.pk}).pop()
    assert part.status == Status.SCHEDULED
    # completing it records the work, resolves the ticket and returns the node to IDLE
    with pytest.raises(ValidationError):
        window_complete(by=fleet.operator, window=window, work_done=" ")
    window = window_complete(by=fleet.operator, window=window, work_done="new bearing")
    first.refresh_from_db()
    ticket.refresh_from_db()
    assert first.status == FabricationNode.Status.IDLE
    assert ticket.status == "resolved" and "new bearing" in ticket.resolution


def test_a_future_window_starts_when_the_monitor_finds_it_due(fleet: Fleet, mill):
    window = window_schedule(
        by=fleet.vendor,
        node=mill,
        kind="scheduled",
        starts_at=hours(1),
        ends_at=hours(3),
        reason="annual service",
    )
    mill.refresh_from_db()
    assert window.status == "planned" and mill.status == "idle"
    assert fleet_monitor(now=hours(0.5)).windows_started == 0
    assert fleet_monitor(now=hours(1.01)).windows_started == 1
    mill.refresh_from_db()
    window.refresh_from_db()
    assert mill.status == "maintenance" and window.status == "active"


def test_windows_are_validated_and_may_not_overlap(fleet: Fleet, mill):
    window_schedule(
        by=fleet.vendor,
        node=mill,
        kind="scheduled",
        starts_at=hours(1),
        ends_at=hours(3),
        reason="service",
    )
    with pytest.raises(Conflict):
        window_schedule(
            by=fleet.vendor,
            node=mill,
            kind="predictive",
            starts_at=hours(2),
            ends_at=hours(5),
            reason="bearing",
        )
    with pytest.raises(ValidationError) as bad:
        window_schedule(
            by=fleet.vendor,
            node=mill,
            kind="whenever",
            starts_at=hours(6),
            ends_at=hours(5),
            reason="",
        )
    assert set(bad.value.message_dict) == {"kind", "ends_at", "reason"}
    with pytest.raises(PermissionDenied):
        window_schedule(
            by=fleet.rival,
            node=mill,
            kind="scheduled",
            starts_at=hours(8),
            ends_at=hours(9),
            reason="x",
        )


def test_a_planned_window_can_be_cancelled_not_an_active_one(fleet: Fleet, mill):
    planned = window_schedule(
        by=fleet.vendor,
        node=mill,
        kind="scheduled",
        starts_at=hours(1),
        ends_at=hours(2),
        reason="service",
    )
    assert window_cancel(by=fleet.vendor, window=planned).status == "cancelled"
    active = window_schedule(
        by=fleet.vendor,
        node=mill,
        kind="emergency",
        starts_at=hours(0),
        ends_at=hours(2),
        reason="smoke",
    )
    with pytest.raises(Conflict):
        window_cancel(by=fleet.vendor, window=active)
    assert MaintenanceWindow.objects.filter(status="active").count() == 1


def test_the_monitor_marks_silent_nodes_offline_and_scores_health(fleet: Fleet, mill, send):
    at = send(mill, 0, temperature_c=40)  # 30 minutes ago (see conftest)
    report = fleet_monitor(now=at + timedelta(minutes=4))
    health = NodeHealth.objects.get(node=mill)
    assert report.came_online == 1 and health.online and health.score == 100
    report = fleet_monitor(now=at + timedelta(minutes=6))
    health.refresh_from_db()
    assert report.went_offline == 1 and not health.online
    assert health.components == {"offline": 40.0} and health.score == 60
    assert health.went_offline_at is not None


def test_health_score_components():
    score, parts = health_score(
        online=True,
        open_alerts=["warning", "critical"],
        open_tickets=["critical"],
        anomalous=True,
        failure_probability=0.5,
        rul_short=True,
    )
    assert parts == {
        "alerts": 40.0,
        "tickets": 10.0,
        "anomaly": 20.0,
        "failure_risk": 20.0,
        "remaining_life": 20.0,
    }
    assert score == 0.0  # 110 points off, floored at 0

"""The plan is the plan machines follow (issue 18, item 4): through the node work API, a part
the energy-aware plan moved into tomorrow's cheap hours is not handed out before its planned
start, and a node's queue runs in the plan's order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.jobs.models import Job, Part, Status
from apps.jobs.services import job_submit, parts_schedule, work_release
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_transition
from tests.energy.test_energy_aware_scheduling import PLA, prices
from tests.fixtures.shop import Shop
from tests.jobs.test_work_api import device

pytestmark = pytest.mark.django_db


def only_printer_a(shop: Shop) -> FabricationNode:
    node_transition(
        node=shop.printer_b,
        to=FabricationNode.Status.MAINTENANCE,
        by=shop.vendor,
        reason="out for the test",
    )
    return shop.printer_a


def test_a_part_planned_for_the_cheap_hours_is_not_handed_out_before_them(shop: Shop, api):
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    printer = only_printer_a(shop)
    prices(printer.site, now, range(8, 12))
    job = job_submit(
        by=shop.designer,
        title="Brackets",
        parts=[{**PLA, "name": "bracket"}],
        deadline=now + timedelta(hours=24),
        timing=Job.Timing.BALANCED,
    )
    parts_schedule(now=now)
    part = job.parts.get()
    assert part.assigned_node_id == printer.pk
    assert part.planned_start is not None and part.planned_start >= now + timedelta(hours=8)
    assert part.hold_until == part.planned_start
    agent = device(api, printer, shop)

    # the machine sees the part, not ready, and when it will be
    (queued,) = agent.get("/api/v1/work/parts/").json()["results"]
    assert queued["id"] == part.pk and queued["ready"] is False
    assert "cheaper, greener hours" in queued["waits_for"]
    not_before = part.hold_until - timedelta(minutes=5)  # JOBS_START_TOLERANCE_MINUTES
    assert queued["not_before"] == not_before.isoformat().replace("+00:00", "Z")

    # asking to start it now is refused with the same facts, and changes nothing
    refused = agent.post(f"/api/v1/work/parts/{part.pk}/start/")
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert "cheaper, greener hours" in error["message"]
    assert error["details"]["not_before"] == not_before.isoformat()
    part.refresh_from_db()
    assert part.status == Status.SCHEDULED and part.started_at is None

    # within the tolerance of its planned start, it is released
    assert not work_release([part], now=not_before - timedelta(seconds=1))[part.pk].ready
    assert work_release([part], now=not_before)[part.pk].ready
    Part.objects.filter(pk=part.pk).update(hold_until=timezone.now() + timedelta(minutes=4))
    started = agent.post(f"/api/v1/work/parts/{part.pk}/start/")
    assert started.status_code == 200 and started.json()["status"] == "in_progress"


def test_a_node_starts_its_parts_in_the_plans_order(shop: Shop, api):
    printer = only_printer_a(shop)
    low = job_submit(by=shop.designer, title="Later", parts=[{**PLA, "name": "late"}])
    urgent = job_submit(
        by=shop.designer, title="First", parts=[{**PLA, "name": "urgent"}], priority=9
    )
    parts_schedule()
    first, second = urgent.parts.get(), low.parts.get()
    assert first.assigned_node_id == second.assigned_node_id == printer.pk
    assert first.planned_start is not None and second.planned_start is not None
    assert first.planned_start < second.planned_start  # the plan: priority first
    assert first.hold_until is None and second.hold_until is None  # nothing held on purpose
    agent = device(api, printer, shop)

    queue = agent.get("/api/v1/work/parts/").json()["results"]
    assert [(p["id"], p["ready"]) for p in queue] == [(first.pk, True), (second.pk, False)]
    assert queue[1]["waits_for"] == f"part {first.pk} (urgent) comes first in the plan"

    refused = agent.post(f"/api/v1/work/parts/{second.pk}/start/")
    assert (
        refused.status_code == 409
        and "comes first in the plan" in refused.json()["error"]["message"]
    )
    assert agent.post(f"/api/v1/work/parts/{first.pk}/start/").status_code == 200
    # a machine makes one part at a time: the next waits until the first is done
    queue = agent.get("/api/v1/work/parts/").json()["results"]
    assert [(p["id"], p["status"], p["ready"]) for p in queue] == [
        (first.pk, "in_progress", True),
        (second.pk, "scheduled", False),
    ]
    assert queue[1]["waits_for"] == f"part {first.pk} (urgent) is under way"
    assert agent.post(f"/api/v1/work/parts/{second.pk}/start/").status_code == 409
    done = agent.post(f"/api/v1/work/parts/{first.pk}/complete/", {"quality_score": 0.9})
    assert done.status_code == 200
    # then the second may start, before its planned start: that plan only said when the node
    # would be free, and it is free now
    (queued,) = agent.get("/api/v1/work/parts/").json()["results"]
    assert queued["id"] == second.pk and queued["ready"] is True
    assert agent.post(f"/api/v1/work/parts/{second.pk}/start/").status_code == 200

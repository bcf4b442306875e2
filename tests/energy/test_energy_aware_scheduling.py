"""End to end through the database: the jobs scheduler consults the energy app's outlook
(stored hourly prices at the nodes' site) and moves a flexible job into the cheap hours, never
past its deadline; an ASAP job stays where it is."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from apps.energy.services import rates_store
from apps.jobs.models import Job
from apps.jobs.services import job_submit, parts_schedule
from tests.fixtures.shop import Shop

pytestmark = pytest.mark.django_db

PLA = {"material": "PLA", "process": "fdm", "size_x_mm": 60, "size_y_mm": 40, "size_z_mm": 30}


def prices(site, now: datetime, cheap: range) -> None:
    """Dear grid power for two days, except for the hours in `cheap` (from now)."""
    hour0 = now.replace(minute=0, second=0, microsecond=0)
    report = rates_store(
        by=None,
        items=[
            {
                "site": site.pk,
                "hour": (hour0 + timedelta(hours=h)).isoformat(),
                "price": "0.08" if h in cheap else "0.45",
            }
            for h in range(0, 49)
        ],
    )
    assert report.stored == 49 and not report.errors


def plan_of(job: Job) -> dict:
    part = job.parts.get()
    assert part.assigned_node_id is not None
    return {**part.placement, "start_at": part.planned_start, "finish_at": part.planned_finish}


def test_a_flexible_job_moves_into_the_cheap_hours_and_never_past_its_deadline(shop: Shop):
    # given the printers' operator site with cheap power from 8 to 12 hours from now
    now = timezone.now().replace(minute=0, second=0, microsecond=0)  # on the hour: see README
    site = shop.printer_a.site
    assert site is not None and shop.printer_b.site_id == site.pk
    prices(site, now, range(8, 12))
    # when a flexible job due in a day and an ASAP job are scheduled
    flexible = job_submit(
        by=shop.designer,
        title="Brackets",
        parts=[{**PLA, "name": "bracket"}],
        deadline=now + timedelta(hours=24),
        timing=Job.Timing.BALANCED,
    )
    asap = job_submit(by=shop.designer, title="Now", parts=[{**PLA, "name": "clip"}])
    parts_schedule(now=now)
    # then the flexible part runs inside the cheap hours, with its planned energy ...
    plan = plan_of(flexible)
    start = plan["start_at"]
    finish = plan["finish_at"]
    hour0 = now.replace(minute=0)
    assert hour0 + timedelta(hours=8) <= start and finish <= hour0 + timedelta(hours=12)
    assert finish <= flexible.deadline
    assert plan["shifted_h"] > 7 and "cheaper, greener hours" in plan["reason"]
    assert plan["energy"]["kwh"] > 0 and plan["energy"]["cost"] > 0
    # ... and the ASAP one starts now at the dear price
    quick = plan_of(asap)
    assert quick["start_at"] == now
    per_kwh = quick["energy"]["cost"] / quick["energy"]["kwh"]
    assert per_kwh > plan["energy"]["cost"] / plan["energy"]["kwh"]


def test_a_flexible_job_whose_deadline_comes_before_the_cheap_hours_stays_in_time(shop: Shop):
    now = timezone.now().replace(minute=0, second=0, microsecond=0)  # on the hour: see README
    prices(shop.printer_a.site, now, range(20, 24))
    job = job_submit(
        by=shop.designer,
        title="Urgent-ish",
        parts=[{**PLA, "name": "bracket"}],
        deadline=now + timedelta(hours=6),
        timing=Job.Timing.LOWEST_CARBON,
    )
    parts_schedule(now=now)
    plan = plan_of(job)
    assert plan["finish_at"] <= job.deadline
    assert not plan.get("shifted_h")  # nothing cheaper or greener within its deadline

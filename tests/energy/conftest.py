from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.jobs.models import Job, Part
from apps.jobs.services import job_submit, parts_schedule, work_start
from apps.telemetry.services import telemetry_ingest
from apps.vendors.models import FabricationNode
from tests.fixtures.fleet import Fleet
from tests.fixtures.machines import rival_node
from tests.fixtures.shop import PRINTER, ready_node

PLA = {"material": "PLA", "process": "fdm", "size_x_mm": 60, "size_y_mm": 40, "size_z_mm": 30}


@pytest.fixture
def printer(fleet: Fleet) -> FabricationNode:
    """Forge's idle FDM printer (0.35 kW) at operator site Site A; the only printer, so parts
    go to it."""
    return ready_node(fleet, **PRINTER)


@pytest.fixture
def rival(fleet: Fleet) -> FabricationNode:
    """The other vendor's mill, at no operator site (its site key is the Rival company)."""
    return rival_node(fleet)


def submit_and_start(fleet: Fleet, *, ran_for: timedelta | None = None) -> Part:
    """A designer's one-part job, scheduled onto the printer and started by the node; with
    `ran_for`, the start is moved that far back (the part has been running that long)."""
    job = job_submit(by=fleet.designer, title="Bracket", parts=[{**PLA, "name": "bracket"}])
    parts_schedule()
    part = job.parts.get()
    assert part.assigned_node_id is not None, part.status
    part = work_start(node_id=part.assigned_node_id, part_id=part.pk)
    if ran_for is not None:
        part.started_at = timezone.now() - ran_for
        part.save(update_fields=["started_at"])
    return part


@pytest.fixture
def ingest() -> Callable[..., None]:
    """Power readings through the real ingest path: (node, [(time, kW), ...])."""

    def send(node: FabricationNode, readings: list[tuple[datetime, float]], **extra: Any) -> None:
        points = [
            {"node": node.pk, "time": at.isoformat(), "power_kw": kw, **extra}
            for at, kw in readings
        ]
        report = telemetry_ingest(points=points, node_id=node.pk)
        assert report.accepted == len(points), report.as_dict()

    return send


def job_of(part: Part) -> Job:
    return Job.objects.get(pk=part.job_id)

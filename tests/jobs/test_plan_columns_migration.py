"""jobs 0004 moves the plan, the declined nodes and the usage report out of `Part.estimates`
into typed columns, and back when reversed, on the real database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.users.models import Organization, User
from apps.vendors.models import FabricationNode

BEFORE = [("jobs", "0003_job_timing")]
AFTER = [("jobs", "0004_part_plan_columns")]


def _migrate(targets: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("latest_migrations_after")
def test_old_estimates_keys_become_columns_and_come_back() -> None:
    # users and vendors stay at their latest state (only jobs goes back)
    owner = User.objects.create(email="m@example.com")
    org = Organization.objects.create(name="Team", slug="team", kind="vendor")
    node = FabricationNode.objects.create(
        vendor=org,
        name="P",
        kind="fdm_printer",
        build_x_mm=1,
        build_y_mm=1,
        build_z_mm=1,
        rated_power_kw=0.3,
    )
    old = _migrate(BEFORE)
    Job = old.get_model("jobs", "Job")
    Part = old.get_model("jobs", "Part")
    job = Job.objects.create(owner_id=owner.pk, organization_id=org.pk, title="J")
    start = datetime(2026, 12, 1, 8, tzinfo=UTC)
    common = {"job": job, "material": "pla", "process": "fdm"}
    size = {"size_x_mm": 1, "size_y_mm": 1, "size_z_mm": 1}
    planned = Part.objects.create(
        name="planned",
        **common,
        **size,
        assigned_node_id=node.pk,
        estimates={
            "duration_h": 2.0,
            "schedule": {
                "node": node.pk,
                "start_at": start.isoformat(),
                "finish_at": "2026-12-01T10:00:00+00:00",
                "at": "2026-12-01T07:59:00+00:00",
                "reason": "best of 1 suitable node(s)",
                "candidates": [{"node": node.pk, "total": 0.8}],
            },
            "declined_nodes": [node.pk, 999999],  # a node deleted since is dropped
            "reported": {"material_used_g": 12.5, "energy_kwh": 0.4},
        },
    )
    broken = Part.objects.create(
        name="broken", **common, **size, estimates={"schedule": {"start_at": "not a time"}}
    )
    untouched = Part.objects.create(name="plain", **common, **size, estimates={"duration_h": 1})

    new = _migrate(AFTER)
    Part = new.get_model("jobs", "Part")
    part = Part.objects.get(pk=planned.pk)
    assert part.planned_start == start
    assert part.planned_finish == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert part.scheduled_at == datetime(2026, 12, 1, 7, 59, tzinfo=UTC)
    assert part.placement == {
        "reason": "best of 1 suitable node(s)",
        "candidates": [{"node": node.pk, "total": 0.8}],
    }
    assert list(part.declined_nodes.values_list("pk", flat=True)) == [node.pk]
    assert (part.reported_material_g, part.reported_waste_g, part.reported_energy_kwh) == (
        12.5,
        None,
        0.4,
    )
    assert part.estimates == {"duration_h": 2.0}
    assert Part.objects.get(pk=broken.pk).planned_start is None  # unreadable, not a crash
    assert Part.objects.get(pk=untouched.pk).estimates == {"duration_h": 1}

    back = _migrate(BEFORE)
    estimates = back.get_model("jobs", "Part").objects.get(pk=planned.pk).estimates
    assert estimates["schedule"]["start_at"] == start.isoformat()
    assert estimates["schedule"]["node"] == node.pk
    assert estimates["declined_nodes"] == [node.pk]
    assert estimates["reported"] == {"material_used_g": 12.5, "energy_kwh": 0.4}
    _migrate(AFTER)
    Part.objects.all().delete()

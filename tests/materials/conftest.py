from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from apps.jobs.models import Job, Part, Status
from apps.materials.models import Inventory, Material, MaterialUsage
from apps.materials.services import catalog_install_standard, inventory_create, usage_record
from apps.vendors.models import FabricationNode
from tests.fixtures.fleet import Fleet
from tests.fixtures.shop import PRINTER, ready_node
from tests.jobs.factories import JobFactory, PartFactory

PLA_PART = {"material": "PLA", "process": "fdm", "size_x_mm": 60, "size_y_mm": 40, "size_z_mm": 30}


@pytest.fixture
def catalog(db: Any) -> dict[str, Material]:
    """The standard catalog by lower-case name (installed again: a transactional test that ran
    before empties every table, migration data included)."""
    catalog_install_standard()
    return {m.name.lower(): m for m in Material.objects.all()}


@pytest.fixture
def printer(fleet: Fleet) -> FabricationNode:
    """Forge's idle FDM printer at Site A (PLA, PETG): the only node that can print PLA."""
    return ready_node(fleet, **PRINTER)


def stock_of(
    fleet: Fleet,
    node: FabricationNode,
    material: Material,
    quantity: str = "2",
    **fields: Any,
) -> Inventory:
    return inventory_create(
        by=fleet.vendor, node=node, material=material, quantity=Decimal(quantity), **fields
    )


def recorded(part_id: int) -> MaterialUsage:
    """The usage `usage_record` writes for a finished part (None would mean nothing to record)."""
    usage = usage_record(part_id=part_id)
    assert usage is not None, part_id
    return usage


def finished_part(
    fleet: Fleet,
    node: FabricationNode,
    *,
    material_g: float,
    material: str = "PLA",
    process: str = "fdm",
    status: str = Status.COMPLETED,
    progress_pct: float = 100.0,
    finished_at: datetime | None = None,
    reported: dict[str, float] | None = None,
    job: Job | None = None,
) -> Part:
    """A part that ran on `node` and finished, written directly (usage is then recorded by
    calling the service, as the receiver or the reconciliation would)."""
    if job is None:
        job = JobFactory.create(
            owner=fleet.designer,
            organization=fleet.designer.organizations.get(),
            title="Brackets",
            status=Status.IN_PROGRESS,
        )
    estimates: dict[str, Any] = {"material_g": material_g}
    reported = reported or {}
    now = timezone.now()
    return PartFactory.create(
        job=job,
        material=material,
        process=process,
        status=status,
        assigned_node=node,
        progress_pct=progress_pct,
        estimates=estimates,
        reported_material_g=reported.get("material_used_g"),
        reported_waste_g=reported.get("waste_g"),
        reported_energy_kwh=reported.get("energy_kwh"),
        started_at=(finished_at or now) - timedelta(hours=1),
        finished_at=finished_at or now,
    )

"""Material usage of finished parts: recorded once per part when jobs announces the finish
(`part_finished`), or by the daily reconciliation if that was missed, and taken from the
node's stock.

What a part used (all grams):
- completed: `used` is what the node reported (`material_used_g`), else the estimate's
  `material_g` (which already includes supports, purge or the whole milling stock); `waste`
  is the reported `waste_g`, else the process's usual share of `used` (`waste_share`);
- failed: the estimate x the progress reached (unless the node reported what it used), and
  all of it is waste.
The waste never exceeds what was used. What was used also comes off the spool loaded on the
node (`spool_take_for_part`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from apps.jobs.estimates import process_mode
from apps.jobs.models import Part, Status
from apps.jobs.providers import job_panel_changed
from apps.materials.catalog import to_quantity
from apps.materials.models import Inventory, MaterialUsage, StockMovement
from apps.materials.selectors import material_for_name
from apps.materials.services.ledger import inventory_lock, stock_move
from apps.materials.services.orders import inventory_reorder_if_low
from apps.materials.services.spools import spool_take_for_part

FINISHED = (Status.COMPLETED, Status.FAILED)
# An additive estimate deposits 5 % extra for purge and supports (apps/jobs/estimates.py).
ADDITIVE_WASTE_SHARE = 1 - 1 / 1.05
# Laser cutting: the kerf and the skeleton left of the sheet around the outline.
CUTTING_WASTE_SHARE = 0.20
# Parts finished this long ago at most are reconciled (older ones predate the stock counts).
RECONCILE_WINDOW = timedelta(days=3)


def waste_share(part: Part) -> float:
    """The share of the material a completed part consumed that is not in it, by process:
    additive 1 - 1/1.05 (the estimate's purge and supports), subtractive what is milled
    away of the stock block (stock = bounding box + 10 %, part = its CAD volume or 40 % of the
    box, as in the estimate), cutting 20 %, assembly and inspection nothing."""
    mode = process_mode(part.process)
    if mode == "additive":
        return ADDITIVE_WASTE_SHARE
    if mode == "subtractive":
        box = part.size_x_mm * part.size_y_mm * part.size_z_mm / 1000
        if box <= 0:
            return 0.0
        stock = box * 1.1
        solid = part.volume_cm3 if part.volume_cm3 is not None else box * 0.4
        return min(max(1 - solid / stock, 0.0), 1.0)
    if mode == "cutting":
        return CUTTING_WASTE_SHARE
    return 0.0


def usage_figures(part: Part, report: dict[str, float]) -> tuple[float, float, str]:
    """(used g, waste g, source) of a finished part; see the module's docstring."""
    estimate = float(part.estimates.get("material_g") or 0.0)
    reported_used = report.get("material_used_g")
    reported_waste = report.get("waste_g")
    source = (
        MaterialUsage.Source.REPORTED
        if reported_used is not None or reported_waste is not None
        else MaterialUsage.Source.ESTIMATE
    )
    if part.status == Status.FAILED:
        reached = min(max(part.progress_pct / 100, 0.0), 1.0)
        used = float(reported_used) if reported_used is not None else estimate * reached
        return used, used, source
    used = float(reported_used) if reported_used is not None else estimate
    waste = float(reported_waste) if reported_waste is not None else used * waste_share(part)
    return used, min(max(waste, 0.0), used), source


def _stock_for(part: Part, usage: MaterialUsage) -> tuple[Inventory | None, str]:
    """The stock the part took from (locked; None without one) and, when it is not to be
    decremented, why not."""
    if usage.material is None:
        return None, f"'{part.material}' is not in the material catalog"
    if usage.node_id is None:
        return None, "the part ran on no known node"
    found = Inventory.objects.filter(node_id=usage.node_id, material=usage.material).values_list(
        "pk", flat=True
    )
    if not found:
        return None, f"the node keeps no stock of {usage.material.name}"
    inventory = inventory_lock(pk=found[0])
    if inventory.created_at > usage.at:
        return inventory, "the stock was first counted after the part finished"
    if (
        inventory.loaded
        and inventory.telemetry_at is not None
        and part.started_at is not None
        and inventory.telemetry_at >= part.started_at
    ):
        # the node's material_remaining readings during the part already took it off
        return inventory, "already counted by the node's material_remaining telemetry"
    if inventory.material.grams_per_unit is None:
        return inventory, f"{inventory.material.unit} of this material has no weight in grams"
    return inventory, ""


@transaction.atomic
def usage_record(
    *, part_id: int, node_id: int | None = None, report: dict[str, float] | None = None
) -> MaterialUsage | None:
    """Records what a finished part used and takes it from the node's stock: usage (what
    went into the part) and waste as two movements, converted to the stock's unit. Once per
    part: a repeated call returns the first record. None when the part is not finished."""
    part = (
        Part.objects.select_for_update(of=("self",))
        .select_related("job")
        .filter(pk=part_id)
        .first()
    )
    if part is None or part.status not in FINISHED:
        return None
    existing = MaterialUsage.objects.filter(part=part).first()
    if existing is not None:
        return existing
    if report is None:
        report = part.usage_report
    used, waste, source = usage_figures(part, report)
    usage = MaterialUsage.objects.create(
        part=part,
        job=part.job,
        node_id=node_id or part.assigned_node_id,
        material=material_for_name(part.material),
        material_name=part.material[:60],
        outcome=part.status,
        used_g=round(used, 3),
        waste_g=round(waste, 3),
        source=source,
        at=part.finished_at or timezone.now(),
    )
    inventory, why = _stock_for(part, usage)
    usage.inventory = inventory
    usage.stock_note = why[:200]
    if inventory is not None and not why:
        grams = inventory.material.grams_per_unit
        assert grams is not None
        what = f"part {part.pk} ({part.name}) of job {part.job_id}"
        for kind, amount in (
            (StockMovement.Kind.USAGE, usage.in_part_g),
            (StockMovement.Kind.WASTE, usage.waste_g),
        ):
            stock_move(
                inventory=inventory,
                delta=-to_quantity(Decimal(str(amount)) / grams),
                kind=kind,
                part=part,
                note=f"{amount:g} g, {what}",
            )
        usage.stock_note = "taken from stock"
        inventory_reorder_if_low(inventory=inventory)
    spool_take_for_part(usage=usage)
    usage.save(update_fields=["inventory", "stock_note", "spool", "spool_taken_g", "spool_note"])
    job_panel_changed(part.job_id, "materials")
    return usage


def usage_reconcile(*, now: datetime | None = None) -> list[int]:
    """Records the usage of parts finished recently that have none (a receiver that failed
    or a worker that died): nothing is dropped silently. Returns the part ids recorded."""
    since = (now or timezone.now()) - RECONCILE_WINDOW
    missing = Part.objects.filter(
        status__in=FINISHED,
        finished_at__gte=since,
        assigned_node__isnull=False,
        material_usage__isnull=True,
    ).values_list("pk", flat=True)
    recorded = []
    for part_id in missing:
        if usage_record(part_id=part_id) is not None:
            recorded.append(part_id)
    return recorded

"""Stock per node: creating and configuring it, counting it by hand (adjust, restock), the
node's `material_remaining` telemetry, and the daily sweep that recomputes reorder points
from recent usage and drafts the orders that are missing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.exceptions import Conflict
from apps.materials.catalog import to_quantity
from apps.materials.forecast import days_until_stockout, reorder_point
from apps.materials.models import Inventory, Material, StockMovement
from apps.materials.selectors import stock_nodes, usage_series
from apps.materials.services.ledger import inventory_lock, stock_move
from apps.materials.services.orders import inventory_reorder_if_low, stock_check_manages
from apps.notify.models import EventKind, Severity
from apps.notify.services import event_raise
from apps.users.models import User
from apps.vendors.models import FabricationNode

Kind = StockMovement.Kind
SETTINGS = ("reorder_point", "reorder_quantity", "reorder_point_auto", "auto_reorder", "loaded")


def _not_negative(values: dict[str, Any]) -> dict[str, Decimal]:
    clean: dict[str, Decimal] = {}
    errors: dict[str, list[str]] = {}
    for key, value in values.items():
        if value is None:
            continue
        amount = to_quantity(value)
        if amount < 0:
            errors[key] = ["Cannot be negative."]
        clean[key] = amount
    if errors:
        raise ValidationError(errors)
    return clean


def _unload_others(*, node_id: int, keep: int | None) -> None:
    """A node has one loaded material: the one its `material_remaining` telemetry is about."""
    others = Inventory.objects.filter(node_id=node_id, loaded=True)
    if keep is not None:
        others = others.exclude(pk=keep)
    others.update(loaded=False, updated_at=timezone.now())


@transaction.atomic
def inventory_create(
    *,
    by: User,
    node: FabricationNode,
    material: Material,
    quantity: Decimal | float = 0,
    reorder_point: Decimal | float = 0,
    reorder_quantity: Decimal | float = 0,
    reorder_point_auto: bool | None = None,
    auto_reorder: bool = True,
    loaded: bool = False,
) -> Inventory:
    """Starts keeping stock of `material` at `node`; an opening quantity is recorded as a
    manual adjustment. A reorder point given here is kept (not recomputed) unless
    `reorder_point_auto` says otherwise."""
    if not stock_nodes(user=by).filter(pk=node.pk).exists():
        raise PermissionDenied("You do not manage this node's stock.")
    if not material.active:
        raise ValidationError({"material": [f"{material.name} is no longer in the catalog."]})
    figures = _not_negative(
        {
            "quantity": quantity,
            "reorder_point": reorder_point,
            "reorder_quantity": reorder_quantity,
        }
    )
    if reorder_point_auto is None:
        reorder_point_auto = figures["reorder_point"] == 0
    if loaded:
        _unload_others(node_id=node.pk, keep=None)
    try:
        with transaction.atomic():
            inventory = Inventory.objects.create(
                node=node,
                material=material,
                reorder_point=figures["reorder_point"],
                reorder_quantity=figures["reorder_quantity"],
                reorder_point_auto=reorder_point_auto,
                auto_reorder=auto_reorder,
                loaded=loaded,
            )
    except IntegrityError:
        raise Conflict(
            f"{node.name} already keeps stock of {material.name}.", field="material"
        ) from None
    if figures["quantity"] > 0:
        stock_move(
            inventory=inventory,
            delta=figures["quantity"],
            kind=Kind.ADJUSTMENT,
            by=by,
            note="Opening stock",
        )
    inventory_reorder_if_low(inventory=inventory)
    return inventory


@transaction.atomic
def inventory_update(*, by: User, inventory: Inventory, **changes: Any) -> Inventory:
    """Reorder figures and switches (see SETTINGS). Setting a reorder point by hand keeps it:
    the daily sweep stops recomputing it unless `reorder_point_auto` is set again."""
    stock_check_manages(by=by, inventory=inventory)
    unknown = sorted(set(changes) - set(SETTINGS))
    if unknown:
        raise ValidationError({key: ["Not a stock setting."] for key in unknown})
    inventory = inventory_lock(pk=inventory.pk)
    figures = _not_negative(
        {k: changes[k] for k in ("reorder_point", "reorder_quantity") if k in changes}
    )
    if "reorder_point" in figures and "reorder_point_auto" not in changes:
        changes["reorder_point_auto"] = False
    changes.update(figures)
    if changes.get("loaded"):
        _unload_others(node_id=inventory.node_id, keep=inventory.pk)
    fields = []
    for key, value in changes.items():
        if value is None:
            continue
        setattr(inventory, key, value)
        fields.append(key)
    if fields:
        inventory.save(update_fields=[*fields, "updated_at"])
    inventory_reorder_if_low(inventory=inventory)
    return inventory


@transaction.atomic
def inventory_adjust(
    *,
    by: User,
    inventory: Inventory,
    note: str,
    delta: Decimal | float | None = None,
    quantity: Decimal | float | None = None,
) -> StockMovement | None:
    """A correction by hand: either `delta` (+/-) or the counted `quantity` (a stocktake).
    Says why in `note`. Returns the movement (None when the count matched)."""
    stock_check_manages(by=by, inventory=inventory)
    errors: dict[str, list[str]] = {}
    if (delta is None) == (quantity is None):
        errors["delta"] = ["Give either a change (delta) or the counted quantity, not both."]
    if not note.strip():
        errors["note"] = ["Say why the stock changes."]
    if quantity is not None and to_quantity(quantity) < 0:
        errors["quantity"] = ["Cannot be negative."]
    if delta is not None and to_quantity(delta) == 0:
        errors["delta"] = ["A change of 0 changes nothing."]
    if errors:
        raise ValidationError(errors)
    inventory = inventory_lock(pk=inventory.pk)
    change = (
        to_quantity(delta) if delta is not None else to_quantity(quantity or 0) - inventory.quantity
    )
    if change < 0 and -change > inventory.quantity:
        raise ValidationError(
            {"delta": [f"Only {inventory.quantity} {inventory.material.unit} in stock."]}
        )
    move = stock_move(
        inventory=inventory, delta=change, kind=Kind.ADJUSTMENT, by=by, note=note.strip()
    )
    inventory_reorder_if_low(inventory=inventory)
    return move


@transaction.atomic
def inventory_restock(
    *, by: User, inventory: Inventory, quantity: Decimal | float, note: str = ""
) -> StockMovement:
    """Material delivered outside a purchase order."""
    stock_check_manages(by=by, inventory=inventory)
    amount = to_quantity(quantity)
    if amount <= 0:
        raise ValidationError({"quantity": ["Must be above 0."]})
    inventory = inventory_lock(pk=inventory.pk)
    move = stock_move(
        inventory=inventory,
        delta=amount,
        kind=Kind.RESTOCK,
        by=by,
        note=note.strip() or "Restocked by hand",
    )
    assert move is not None
    inventory.last_restock_at = move.at
    inventory.save(update_fields=["last_restock_at", "updated_at"])
    return move


@transaction.atomic
def inventory_from_telemetry(
    *, node_id: int, remaining_g: float, at: datetime
) -> StockMovement | None:
    """The node's `material_remaining` (grams of its loaded material) becomes that stock's
    quantity. Nothing is written when no stock is loaded, the reading is older than the last
    one applied, the unit has no weight, or the quantity did not change."""
    found = Inventory.objects.filter(node_id=node_id, loaded=True).values_list("pk", flat=True)
    if not found:
        return None
    inventory = inventory_lock(pk=found[0])
    if inventory.telemetry_at is not None and at <= inventory.telemetry_at:
        return None
    grams = inventory.material.grams_per_unit
    if grams is None or remaining_g < 0:
        return None
    inventory.telemetry_at = at
    inventory.save(update_fields=["telemetry_at", "updated_at"])
    counted = to_quantity(Decimal(str(remaining_g)) / grams)
    move = stock_move(
        inventory=inventory,
        delta=counted - inventory.quantity,
        kind=Kind.TELEMETRY,
        note=f"material_remaining {remaining_g:g} g at {at:%Y-%m-%d %H:%M:%S}",
    )
    if move is not None:
        inventory_reorder_if_low(inventory=inventory)
    return move


@dataclass
class SweepReport:
    inventories: int = 0
    reorder_points_updated: int = 0
    orders: list[int] = field(default_factory=list)
    usage_recorded: int = 0


def inventory_reorder_sweep(*, today: date | None = None) -> SweepReport:
    """Daily: records the usage a receiver missed, recomputes the reorder points that follow
    usage (only from a window with some usage: none at all keeps the last point), and drafts
    the automatic orders of stocks at or below their point that have none open."""
    from apps.materials.services.usage import usage_reconcile

    report = SweepReport(usage_recorded=len(usage_reconcile()))
    inventories = list(Inventory.objects.select_related("material", "node"))
    report.inventories = len(inventories)
    series = usage_series(inventories=inventories, end=today)
    for inv in inventories:
        with transaction.atomic():
            locked = inventory_lock(pk=inv.pk)
            daily = series[inv.pk]
            if locked.reorder_point_auto and daily.any():
                point = to_quantity(reorder_point(daily, locked.material.lead_time_days))
                if point != locked.reorder_point:
                    locked.reorder_point = point
                    locked.save(update_fields=["reorder_point", "updated_at"])
                    report.reorder_points_updated += 1
            order = inventory_reorder_if_low(inventory=locked)
            if order is not None:
                report.orders.append(order.pk)
            _raise_stockout(locked, daily)
    return report


def _raise_stockout(inventory: Inventory, daily: Any) -> None:
    """The daily forecast: stock that runs out before a new order could arrive."""
    days = days_until_stockout(float(inventory.quantity), daily)
    lead = float(inventory.material.lead_time_days)
    if days is None or days > lead:
        return
    node = inventory.node
    event_raise(
        kind=EventKind.STOCK_OUT_FORECAST,
        severity=Severity.CRITICAL if days < lead / 2 else Severity.WARNING,
        title=f"{inventory.material.name} on {node.name} runs out in {days:.1f} days",
        body=f"Usage of the last weeks empties the stock before the {lead:g}-day lead time.",
        link=f"/materials/inventory/{inventory.pk}/",
        subject=f"inventory:{inventory.pk}",
        organizations=[node.vendor_id, node.site_id],
    )

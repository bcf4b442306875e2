"""The one place an inventory's quantity changes: every change is a StockMovement."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from apps.materials.catalog import to_quantity
from apps.materials.models import Inventory, StockMovement

ZERO = Decimal("0")


def inventory_lock(*, pk: int) -> Inventory:
    """The inventory row locked for the rest of the transaction (changes queue behind it)."""
    return (
        Inventory.objects.select_for_update(of=("self",))
        .select_related("material", "node")
        .get(pk=pk)
    )


def stock_move(
    *,
    inventory: Inventory,
    delta: Decimal | float,
    kind: str,
    by: Any = None,
    part: Any = None,
    purchase_order: Any = None,
    note: str = "",
    at: datetime | None = None,
) -> StockMovement | None:
    """Changes `inventory` (locked by the caller) by `delta` units and records why. Stock never
    goes below zero: a larger decrement takes what is there and the note says how much was
    short. Returns None when nothing changes."""
    change = to_quantity(delta)
    after = inventory.quantity + change
    if after < 0:
        short = -after
        note = f"{note}; " if note else ""
        note += f"stock ran out, {short} {inventory.material.unit} short"
        change, after = -inventory.quantity, ZERO
    if change == 0:
        return None
    inventory.quantity = after
    inventory.save(update_fields=["quantity", "updated_at"])
    return StockMovement.objects.create(
        inventory=inventory,
        kind=kind,
        delta=change,
        quantity_after=after,
        part=part,
        purchase_order=purchase_order,
        by=by,
        note=note[:300],
        at=at or timezone.now(),
    )

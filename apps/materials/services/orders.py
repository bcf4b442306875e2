"""Purchase orders: drafted by the platform when stock falls to the reorder point (at most one
open per stock) or by hand; sent to the supplier, received (which restocks) or cancelled."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from apps.core.exceptions import Conflict
from apps.core.models import Notification
from apps.core.services import notification_send
from apps.jobs.estimates import money
from apps.materials.catalog import to_quantity
from apps.materials.models import (
    OPEN_ORDER_STATUSES,
    Inventory,
    PurchaseOrder,
    StockMovement,
)
from apps.materials.selectors import inventory_forecasts, stock_nodes
from apps.materials.services.ledger import ZERO, inventory_lock, stock_move
from apps.notify.models import EventKind, Severity
from apps.notify.services import event_raise
from apps.users.models import Organization, User

PO = PurchaseOrder.Status


def stock_check_manages(*, by: User, inventory: Inventory) -> None:
    """Defence in depth: interfaces fetch through the selectors, services check again."""
    if not stock_nodes(user=by).filter(pk=inventory.node_id).exists():
        raise PermissionDenied("You do not manage this node's stock.")


def order_quantity(*, inventory: Inventory) -> Decimal:
    """How much to order: the stock's reorder quantity, or without one enough to bring stock
    up to twice the reorder point; never below the material's minimum order quantity."""
    if inventory.reorder_quantity > 0:
        wanted = inventory.reorder_quantity
    else:
        wanted = max(2 * inventory.reorder_point - inventory.quantity, ZERO)
    return to_quantity(max(wanted, inventory.material.min_order_qty))


def _members(org: Organization | None) -> list[User]:
    if org is None:
        return []
    return list(User.objects.filter(memberships__organization=org, is_active=True).distinct())


def _create(
    *, inventory: Inventory, quantity: Decimal, origin: str, reason: str, by: User | None
) -> PurchaseOrder:
    material = inventory.material
    return PurchaseOrder.objects.create(
        inventory=inventory,
        supplier=material.supplier,
        quantity=quantity,
        unit_cost=material.unit_cost,
        total=money(quantity * material.unit_cost),
        currency=material.currency,
        origin=origin,
        reason=reason[:500],
        created_by=by,
    )


def _auto_reason(inventory: Inventory) -> str:
    unit = inventory.material.unit
    forecast = inventory_forecasts(inventories=[inventory])[inventory.pk]
    days_left = (
        f"{forecast.days_left:.1f} days of stock left"
        if forecast.days_left is not None
        else "no recent usage"
    )
    return (
        f"Stock {inventory.quantity} {unit} at or below the reorder point "
        f"{inventory.reorder_point} {unit}: mean usage {forecast.mean_daily:.3f} {unit}/day "
        f"(std {forecast.std_daily:.3f}) over {forecast.history_days} days, lead time "
        f"{forecast.lead_time_days} days, {days_left}."
    )


def inventory_reorder_if_low(*, inventory: Inventory) -> PurchaseOrder | None:
    """Drafts the automatic order of a stock at or below its reorder point, once: nothing when
    an order of it (either origin) is still open. The vendor's people are told. Call with the
    inventory locked; a concurrent draft loses on the one-open-auto-order constraint."""
    if not (inventory.auto_reorder and inventory.is_low):
        return None
    if inventory.purchase_orders.filter(status__in=OPEN_ORDER_STATUSES).exists():
        return None
    quantity = order_quantity(inventory=inventory)
    if quantity <= 0:
        return None
    try:
        with transaction.atomic():
            order = _create(
                inventory=inventory,
                quantity=quantity,
                origin=PurchaseOrder.Origin.AUTO,
                reason=_auto_reason(inventory),
                by=None,
            )
    except IntegrityError:
        return None
    node = inventory.node
    link = reverse("materials:inventory-detail", args=[inventory.pk])
    event_raise(
        kind=EventKind.PURCHASE_ORDER_CREATED,
        severity=Severity.WARNING,
        title=f"Reorder {inventory.material.name} for {node.name}",
        body=f"Draft purchase order #{order.pk}: {order.quantity} {inventory.material.unit} "
        f"for {order.total} {order.currency}. {order.reason}",
        link=link,
        subject=f"inventory:{inventory.pk}",
        data={"order": order.pk, "node": node.pk},
        organizations=[node.vendor_id],
        users=_members(node.vendor),
    )
    for user in _members(node.vendor):
        notification_send(
            user=user,
            title=f"Reorder {inventory.material.name} for {node.name}",
            body=(
                f"Draft purchase order #{order.pk}: {order.quantity} {inventory.material.unit} "
                f"for {order.total} {order.currency}. {order.reason} Review and send it."
            ),
            level=Notification.Level.WARNING,
            link=link,
        )
    return order


@transaction.atomic
def purchase_order_create(
    *, by: User, inventory: Inventory, quantity: Decimal | None = None, note: str = ""
) -> PurchaseOrder:
    """A manual order (a draft), whatever the stock level."""
    stock_check_manages(by=by, inventory=inventory)
    inventory = inventory_lock(pk=inventory.pk)
    if quantity is None:
        quantity = order_quantity(inventory=inventory)
        if quantity <= 0:
            raise ValidationError({"quantity": ["Say how much to order (no reorder figures)."]})
    quantity = to_quantity(quantity)
    if quantity <= 0:
        raise ValidationError({"quantity": ["Must be above 0."]})
    moq = inventory.material.min_order_qty
    if quantity < moq:
        raise ValidationError(
            {"quantity": [f"The minimum order is {moq} {inventory.material.unit}."]}
        )
    reason = note.strip() or f"Ordered by {by.email}"
    return _create(
        inventory=inventory,
        quantity=quantity,
        origin=PurchaseOrder.Origin.MANUAL,
        reason=reason,
        by=by,
    )


def _locked(order: PurchaseOrder) -> PurchaseOrder:
    return (
        PurchaseOrder.objects.select_for_update(of=("self",))
        .select_related("inventory", "inventory__material", "inventory__node", "supplier")
        .get(pk=order.pk)
    )


def _refuse(order: PurchaseOrder, action: str) -> Conflict:
    return Conflict(
        f"A {order.get_status_display().lower()} order cannot be {action}.",
        details={"status": order.status},
    )


@transaction.atomic
def purchase_order_send(*, by: User, order: PurchaseOrder) -> PurchaseOrder:
    """Draft -> sent: the supplier's people are told; it is expected after the lead time."""
    stock_check_manages(by=by, inventory=order.inventory)
    order = _locked(order)
    if order.status == PO.SENT:
        return order  # a repeated click
    if order.status != PO.DRAFT:
        raise _refuse(order, "sent")
    now = timezone.now()
    order.status = PO.SENT
    order.sent_at = now
    order.expected_at = now + timedelta(days=order.inventory.material.lead_time_days)
    order.save(update_fields=["status", "sent_at", "expected_at", "updated_at"])
    inventory = order.inventory
    for user in _members(order.supplier):
        notification_send(
            user=user,
            title=f"Purchase order #{order.pk}: {inventory.material.name}",
            body=(
                f"{order.quantity} {inventory.material.unit} of {inventory.material.name} for "
                f"{inventory.node.name} ({inventory.node.vendor.name}), {order.total} "
                f"{order.currency}, expected by {order.expected_at:%Y-%m-%d}."
            ),
        )
    return order


@transaction.atomic
def purchase_order_receive(
    *, by: User, order: PurchaseOrder, quantity: Decimal | None = None, note: str = ""
) -> PurchaseOrder:
    """Sent -> received: the received quantity (the ordered one unless said) goes into stock
    and the stock's last restock is now."""
    stock_check_manages(by=by, inventory=order.inventory)
    order = _locked(order)
    if order.status != PO.SENT:
        raise _refuse(order, "received (send it first)" if order.status == PO.DRAFT else "received")
    received = to_quantity(order.quantity if quantity is None else quantity)
    if received <= 0:
        raise ValidationError({"quantity": ["Must be above 0."]})
    now = timezone.now()
    order.status = PO.RECEIVED
    order.received_at = now
    order.received_quantity = received
    order.note = note.strip()[:500]
    order.save(update_fields=["status", "received_at", "received_quantity", "note", "updated_at"])
    inventory = inventory_lock(pk=order.inventory_id)
    stock_move(
        inventory=inventory,
        delta=received,
        kind=StockMovement.Kind.RESTOCK,
        by=by,
        purchase_order=order,
        note=f"Purchase order #{order.pk} received",
    )
    inventory.last_restock_at = now
    inventory.save(update_fields=["last_restock_at", "updated_at"])
    order.inventory = inventory
    return order


@transaction.atomic
def purchase_order_cancel(*, by: User, order: PurchaseOrder, note: str = "") -> PurchaseOrder:
    stock_check_manages(by=by, inventory=order.inventory)
    order = _locked(order)
    if order.status == PO.CANCELLED:
        return order
    if order.status not in OPEN_ORDER_STATUSES:
        raise _refuse(order, "cancelled")
    order.status = PO.CANCELLED
    order.cancelled_at = timezone.now()
    order.note = note.strip()[:500]
    order.save(update_fields=["status", "cancelled_at", "note", "updated_at"])
    return order

"""Who may see which stock, orders and usage, and the reads the pages and the API share.

The INVENTORY_MANAGE scope decides for stock and orders: admins everything, vendors their own
nodes, operators the nodes at the sites they operate, other roles nothing (403: their role has
no stock to manage). Usage is also visible to whoever may view the job it belongs to, on the
job owner's side (designers, engineers, viewers of the job's organization)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import F, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from apps.jobs.models import Job
from apps.jobs.selectors import job_accounting_visible
from apps.materials.catalog import normalise_name
from apps.materials.forecast import daily_usage, days_until_stockout, usage_stats
from apps.materials.models import (
    OPEN_ORDER_STATUSES,
    Inventory,
    Material,
    MaterialUsage,
    PurchaseOrder,
    Spool,
    StockMovement,
)
from apps.users.models import User
from apps.users.roles import Action, scope_for
from apps.vendors.catalog import material_label
from apps.vendors.models import FabricationNode
from apps.vendors.selectors import nodes_in_scope


def history_days() -> int:
    """How many recent days of usage the forecasts use (MATERIALS_HISTORY_DAYS, default 30)."""
    return int(getattr(settings, "MATERIALS_HISTORY_DAYS", 30))


# --- Scope -------------------------------------------------------------------------------------


def stock_can_manage(*, user: User) -> bool:
    return scope_for(user, Action.INVENTORY_MANAGE) is not None


def stock_nodes(*, user: User) -> QuerySet[FabricationNode]:
    """The nodes whose stock `user` manages."""
    return nodes_in_scope(user=user, action=Action.INVENTORY_MANAGE)


def _require_role(user: User) -> None:
    if not stock_can_manage(user=user):
        raise PermissionDenied("Your role does not manage material stock.")


def stock_node_get(*, user: User, pk: int) -> FabricationNode:
    """A node whose stock `user` manages; 404, not 403, so ids don't leak."""
    _require_role(user)
    return get_object_or_404(stock_nodes(user=user), pk=pk)


# --- Catalog -----------------------------------------------------------------------------------


def material_list(
    *, category: str | None = None, q: str | None = None, active: bool | None = None
) -> QuerySet[Material]:
    qs = Material.objects.select_related("supplier")
    if category:
        qs = qs.filter(category=category)
    if q:
        qs = qs.filter(name__icontains=q.strip())
    if active is not None:
        qs = qs.filter(active=active)
    return qs


def material_for_name(name: str) -> Material | None:
    """The stock material a part's material means: a catalogue code ("aluminium_6061") finds
    the row named by its label ("Aluminium 6061"); other text matches the name as it is
    (normalised, case-insensitive)."""
    wanted = normalise_name(material_label(name))
    if not wanted:
        return None
    return Material.objects.filter(name__iexact=wanted).first()


# --- Stock -------------------------------------------------------------------------------------


# at or below a reorder point that is set (Inventory.is_low)
LOW_STOCK = Q(reorder_point__gt=0, quantity__lte=F("reorder_point"))


def inventory_list(
    *,
    user: User,
    node_id: int | None = None,
    material_id: int | None = None,
    low: bool | None = None,
) -> QuerySet[Inventory]:
    _require_role(user)
    qs = Inventory.objects.filter(node__in=stock_nodes(user=user).values("pk")).select_related(
        "node", "node__site", "node__vendor", "material", "material__supplier"
    )
    if node_id is not None:
        qs = qs.filter(node_id=node_id)
    if material_id is not None:
        qs = qs.filter(material_id=material_id)
    if low is True:
        qs = qs.filter(LOW_STOCK)
    elif low is False:
        qs = qs.exclude(LOW_STOCK)
    return qs


def inventory_get_for_user(*, user: User, pk: int) -> Inventory:
    return get_object_or_404(inventory_list(user=user), pk=pk)


def inventory_movements(*, inventory: Inventory) -> QuerySet[StockMovement]:
    return inventory.movements.select_related("by", "part", "purchase_order")


def open_order_for(*, inventory: Inventory) -> PurchaseOrder | None:
    return inventory.purchase_orders.filter(status__in=OPEN_ORDER_STATUSES).first()


def open_orders_by_inventory(*, inventories: list[Inventory]) -> dict[int, PurchaseOrder]:
    """The open order of each of `inventories` that has one, in one query."""
    orders = PurchaseOrder.objects.filter(inventory__in=inventories, status__in=OPEN_ORDER_STATUSES)
    return {order.inventory_id: order for order in orders.order_by("created_at")}


@dataclass(frozen=True)
class Forecast:
    mean_daily: float  # in the inventory's unit
    std_daily: float
    days_left: float | None  # None: no usage in the window
    history_days: int
    lead_time_days: int

    @property
    def risk(self) -> str:
        """How urgent: "high" when stock runs out within the lead time (an order placed now
        comes too late), "mid" within twice the lead time, "low" otherwise, "none" without
        usage."""
        if self.days_left is None:
            return "none"
        if self.days_left <= self.lead_time_days:
            return "high"
        return "mid" if self.days_left <= 2 * self.lead_time_days else "low"


def usage_series(
    *, inventories: list[Inventory], end: date | None = None, days: int | None = None
) -> dict[int, Any]:
    """Per inventory id, its daily usage over the window in the inventory's unit (numpy
    array, oldest first): the usage of its material on its node, including usage from before
    the stock was first counted (demand all the same). One query for all."""
    days = days or history_days()
    end = end or timezone.localdate()
    start = end - timedelta(days=days - 1)
    since = timezone.make_aware(datetime.combine(start, datetime.min.time()))
    rows: dict[int, list[tuple[date, float]]] = defaultdict(list)
    by_pair = {(inv.node_id, inv.material_id): inv for inv in inventories}
    usages = MaterialUsage.objects.filter(
        node_id__in={inv.node_id for inv in inventories},
        material_id__in={inv.material_id for inv in inventories},
        at__gte=since,
    ).values_list("node_id", "material_id", "at", "used_g")
    for node_id, material_id, at, used_g in usages:
        inv = by_pair.get((node_id, material_id))
        grams = inv.material.grams_per_unit if inv is not None else None
        if inv is not None and grams:
            rows[inv.pk].append((timezone.localdate(at), used_g / float(grams)))
    return {inv.pk: daily_usage(rows.get(inv.pk, []), end=end, days=days) for inv in inventories}


def inventory_forecasts(
    *, inventories: list[Inventory], end: date | None = None
) -> dict[int, Forecast]:
    days = history_days()
    series = usage_series(inventories=inventories, end=end, days=days)
    out = {}
    for inv in inventories:
        daily = series[inv.pk]
        mean, std = usage_stats(daily)
        out[inv.pk] = Forecast(
            mean_daily=mean,
            std_daily=std,
            days_left=days_until_stockout(float(inv.quantity), daily),
            history_days=days,
            lead_time_days=inv.material.lead_time_days,
        )
    return out


def stock_history(*, inventory: Inventory, days: int = 30) -> list[tuple[datetime, Decimal]]:
    """(time, quantity after) of the movements over the last `days`, oldest first, starting
    with the quantity at the window's start."""
    since = timezone.now() - timedelta(days=days)
    moves = list(
        inventory.movements.filter(at__gte=since)
        .order_by("at", "id")
        .values_list("at", "quantity_after", "delta")
    )
    if not moves:
        return [(since, inventory.quantity), (timezone.now(), inventory.quantity)]
    first_at, first_after, first_delta = moves[0]
    points = [(since, first_after - first_delta)]
    points += [(at, after) for at, after, _ in moves]
    points.append((timezone.now(), inventory.quantity))
    return points


def node_stock_grams(node_ids: list[int]) -> dict[int, dict[str, float]]:
    """The scheduler's stock provider: node id -> {material name in lower case: grams on
    hand}; stock whose unit cannot be turned into grams is left out."""
    out: dict[int, dict[str, float]] = {}
    for inv in Inventory.objects.filter(node_id__in=list(node_ids)).select_related("material"):
        grams = inv.material.grams_per_unit
        if grams is None:
            continue
        out.setdefault(inv.node_id, {})[normalise_name(inv.material.name)] = float(
            inv.quantity * grams
        )
    return out


# --- Orders ------------------------------------------------------------------------------------


def purchase_order_list(
    *,
    user: User,
    status: list[str] | None = None,
    node_id: int | None = None,
    material_id: int | None = None,
    origin: str | None = None,
) -> QuerySet[PurchaseOrder]:
    _require_role(user)
    qs = PurchaseOrder.objects.filter(
        inventory__node__in=stock_nodes(user=user).values("pk")
    ).select_related(
        "inventory", "inventory__node", "inventory__material", "supplier", "created_by"
    )
    if status:
        qs = qs.filter(status__in=status)
    if node_id is not None:
        qs = qs.filter(inventory__node_id=node_id)
    if material_id is not None:
        qs = qs.filter(inventory__material_id=material_id)
    if origin:
        qs = qs.filter(origin=origin)
    return qs


def purchase_order_get_for_user(*, user: User, pk: int) -> PurchaseOrder:
    return get_object_or_404(purchase_order_list(user=user), pk=pk)


# --- Usage -------------------------------------------------------------------------------------


def usage_list(
    *,
    user: User,
    job_id: int | None = None,
    node_id: int | None = None,
    material_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[MaterialUsage]:
    """Usage on the nodes whose stock `user` manages, and usage of the jobs they may view
    as the job's owners."""
    visible = Q(pk__in=[])
    if stock_can_manage(user=user):
        visible |= Q(node__in=stock_nodes(user=user).values("pk"))
    visible |= job_accounting_visible(user=user)
    qs = MaterialUsage.objects.filter(visible).select_related("part", "node", "material", "job")
    if job_id is not None:
        qs = qs.filter(job_id=job_id)
    if node_id is not None:
        qs = qs.filter(node_id=node_id)
    if material_id is not None:
        qs = qs.filter(material_id=material_id)
    if since is not None:
        qs = qs.filter(at__gte=since)
    if until is not None:
        qs = qs.filter(at__lt=until)
    return qs


def job_usage(*, job: Job) -> list[MaterialUsage]:
    """A job's usage, one row per finished part (the job panel; the caller may view the job)."""
    return list(
        MaterialUsage.objects.filter(job=job).select_related("part", "node").order_by("part_id")
    )


def spool_nodes_for(parts: Sequence[Any]) -> dict[int, frozenset[int]]:
    """{part id: the nodes with a loaded spool of the part's material in its colour, holding
    at least the part's estimated grams} for the parts that name a colour."""
    from apps.materials.catalog import normalise_name
    from apps.materials.models import Spool

    coloured = [part for part in parts if getattr(part, "colour_hex", "")]
    if not coloured:
        return {}
    loaded = Spool.objects.filter(
        node__isnull=False, colour_hex__in={part.colour_hex for part in coloured}
    ).select_related("material")
    spools = [
        (normalise_name(s.material.name), s.colour_hex, s.remaining_g, s.node_id)
        for s in loaded
        if s.node_id is not None
    ]
    allowed: dict[int, frozenset[int]] = {}
    for part in coloured:
        grams = float((part.estimates or {}).get("material_g") or 0.0)
        allowed[part.pk] = frozenset(
            node_id
            for material, colour, remaining, node_id in spools
            if material == normalise_name(part.material)
            and colour == part.colour_hex
            and remaining >= grams
        )
    return allowed


def spool_list(*, user: User) -> QuerySet[Spool]:
    """The spools of the vendors whose nodes' stock `user` manages."""
    _require_role(user)
    vendors = stock_nodes(user=user).values("vendor")
    return Spool.objects.filter(vendor__in=vendors).select_related("material", "node")


def spool_get_for_user(*, user: User, pk: int) -> Spool:
    """A spool of a vendor whose stock `user` manages; 404, not 403, so ids don't leak."""
    return get_object_or_404(spool_list(user=user), pk=pk)


def spool_nodes(*, user: User) -> QuerySet[FabricationNode]:
    """The printers `user` may load spools on: the spool-taking nodes whose stock they manage."""
    kinds = (FabricationNode.Kind.FDM_PRINTER, FabricationNode.Kind.SLA_PRINTER)
    return (
        stock_nodes(user=user)
        .filter(kind__in=kinds)
        .select_related("vendor", "site", "loaded_spool", "loaded_spool__material")
    )

"""Portal pages of materials: stock per node with its stock-out forecast (vendor and ops
portals alike; scoping shows each user their own nodes), one stock's page with its history
chart and every action, purchase orders, and the material catalog."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from apps.core.exceptions import Conflict, error_messages
from apps.core.forms import form_add_service_error
from apps.materials.catalog import colour_words
from apps.materials.forms import (
    AdjustForm,
    InventoryCreateForm,
    InventorySettingsForm,
    MaterialForm,
    ReceiveForm,
    ReorderForm,
    RestockForm,
)
from apps.materials.models import Inventory, Material, PurchaseOrder
from apps.materials.selectors import (
    inventory_forecasts,
    inventory_get_for_user,
    inventory_list,
    inventory_movements,
    material_list,
    open_orders_by_inventory,
    purchase_order_get_for_user,
    purchase_order_list,
    spool_get_for_user,
    spool_list,
    spool_nodes,
    stock_history,
    stock_node_get,
    stock_nodes,
    usage_list,
)
from apps.materials.services import (
    catalog_can_edit,
    inventory_adjust,
    inventory_create,
    inventory_restock,
    inventory_update,
    material_create,
    material_update,
    purchase_order_cancel,
    purchase_order_create,
    purchase_order_receive,
    purchase_order_send,
    spool_load,
    spool_low_g,
    spool_unload,
)
from apps.users.access import action_required
from apps.users.roles import Action
from apps.users.types import AuthenticatedHttpRequest
from apps.vendors.catalog import match_key

SERVICE_ERRORS = (ValidationError, PermissionDenied, Conflict)
PAGE_SIZE = 50
MOVEMENTS_PAGE_SIZE = 25
HISTORY_DAYS = 30

stock_required = action_required(Action.INVENTORY_MANAGE)


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _render(
    request: AuthenticatedHttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    return render(request, template, context, status=status)


# --- Stock --------------------------------------------------------------------------------------


def _inventory_context(
    request: AuthenticatedHttpRequest, form: InventoryCreateForm | None = None
) -> dict[str, Any]:
    user = request.user
    node_id = _int(request.GET.get("node"))
    low = request.GET.get("low") == "1"
    rows = inventory_list(user=user, node_id=node_id, low=True if low else None).order_by(
        "node__name", "material__name"
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    items = list(page)
    forecasts = inventory_forecasts(inventories=items)
    open_orders = open_orders_by_inventory(inventories=items)
    groups: list[dict[str, Any]] = []
    for inv in items:
        if not groups or groups[-1]["node"].pk != inv.node_id:
            groups.append({"node": inv.node, "rows": []})
        groups[-1]["rows"].append(
            {"inv": inv, "forecast": forecasts[inv.pk], "order": open_orders.get(inv.pk)}
        )
    nodes = stock_nodes(user=user).order_by("name")
    everything = inventory_list(user=user)
    query = urlencode(
        {k: v for k, v in (("node", node_id or ""), ("low", "1" if low else "")) if v}
    )
    return {
        "page": page,
        "groups": groups,
        "nodes": nodes,
        "node_id": node_id,
        "low": low,
        "filtered": bool(node_id or low),
        "query": query,
        "totals": {
            "stocks": everything.count(),
            "low": inventory_list(user=user, low=True).count(),
            "open_orders": purchase_order_list(
                user=user, status=[PurchaseOrder.Status.DRAFT, PurchaseOrder.Status.SENT]
            ).count(),
        },
        "form": form or InventoryCreateForm(nodes=nodes),
        "form_open": form is not None,
        "history_days": next(iter(forecasts.values())).history_days if forecasts else None,
    }


@login_required
@stock_required
def inventory_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _render(request, "materials/inventory.html", _inventory_context(request))


@require_POST
@login_required
@stock_required
def inventory_create_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = InventoryCreateForm(request.POST, nodes=stock_nodes(user=request.user))
    if form.is_valid():
        try:
            inventory = inventory_create(by=request.user, **form.cleaned_data)
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(
                request, f"{inventory.node.name} now keeps stock of {inventory.material.name}."
            )
            return redirect("materials:inventory-detail", pk=inventory.pk)
    return _render(
        request, "materials/inventory.html", _inventory_context(request, form), status=400
    )


def _history_chart(inventory: Inventory) -> dict[str, Any]:
    points = stock_history(inventory=inventory, days=HISTORY_DAYS)
    unit = inventory.material.unit
    series = [
        {
            "label": f"Stock ({unit})",
            "data": [[int(at.timestamp() * 1000), float(q)] for at, q in points],
            "step": True,
        }
    ]
    if inventory.reorder_point > 0:
        series.append(
            {
                "label": "Reorder point",
                "data": [
                    [int(points[0][0].timestamp() * 1000), float(inventory.reorder_point)],
                    [int(points[-1][0].timestamp() * 1000), float(inventory.reorder_point)],
                ],
                "dash": True,
            }
        )
    # the axis names its unit ("Stock (kg)"), as the line does
    return {"id": "stock-history", "x": "time", "series": series, "axes": {"y": f"Stock ({unit})"}}


def _detail_context(
    request: AuthenticatedHttpRequest, inventory: Inventory, **forms: Any
) -> dict[str, Any]:
    movements = Paginator(inventory_movements(inventory=inventory), MOVEMENTS_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    settings_initial = {
        key: getattr(inventory, key)
        for key in (
            "reorder_point",
            "reorder_point_auto",
            "reorder_quantity",
            "auto_reorder",
            "loaded",
        )
    }
    return {
        "inv": inventory,
        "forecast": inventory_forecasts(inventories=[inventory])[inventory.pk],
        "chart": _history_chart(inventory),
        "history_days": HISTORY_DAYS,
        "page": movements,
        "orders": purchase_order_list(user=request.user).filter(inventory=inventory)[:10],
        "usages": usage_list(user=request.user).filter(inventory=inventory)[:10],
        "adjust_form": forms.get("adjust_form") or AdjustForm(),
        "restock_form": forms.get("restock_form") or RestockForm(),
        "reorder_form": forms.get("reorder_form") or ReorderForm(),
        "settings_form": forms.get("settings_form")
        or InventorySettingsForm(initial=settings_initial),
    }


@login_required
@stock_required
def inventory_detail_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    inventory = inventory_get_for_user(user=request.user, pk=pk)
    return _render(request, "materials/inventory_detail.html", _detail_context(request, inventory))


def _detail_page(
    request: AuthenticatedHttpRequest, inventory: Inventory, **forms: Any
) -> HttpResponse:
    context = _detail_context(request, inventory, **forms)
    return _render(request, "materials/inventory_detail.html", context, status=400)


@require_POST
@login_required
@stock_required
def inventory_adjust_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    inventory = inventory_get_for_user(user=request.user, pk=pk)
    form = AdjustForm(request.POST)
    if form.is_valid():
        try:
            inventory_adjust(by=request.user, inventory=inventory, **form.cleaned_data)
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(request, "Stock adjusted.")
            return redirect("materials:inventory-detail", pk=pk)
    return _detail_page(request, inventory, adjust_form=form)


@require_POST
@login_required
@stock_required
def inventory_restock_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    inventory = inventory_get_for_user(user=request.user, pk=pk)
    form = RestockForm(request.POST)
    if form.is_valid():
        try:
            inventory_restock(by=request.user, inventory=inventory, **form.cleaned_data)
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(request, "Restock recorded.")
            return redirect("materials:inventory-detail", pk=pk)
    return _detail_page(request, inventory, restock_form=form)


@require_POST
@login_required
@stock_required
def inventory_reorder_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    inventory = inventory_get_for_user(user=request.user, pk=pk)
    form = ReorderForm(request.POST)
    if form.is_valid():
        try:
            order = purchase_order_create(by=request.user, inventory=inventory, **form.cleaned_data)
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(
                request,
                f"Draft purchase order #{order.pk}: {order.quantity} "
                f"{inventory.material.unit} for {order.total} {order.currency}. Send it from "
                "the purchase orders.",
            )
            return redirect(request.POST.get("next") or "materials:orders")
    if request.POST.get("next"):  # the inventory list's one-click reorder
        messages.error(request, "Not ordered: " + "; ".join(_form_errors(form)))
        return redirect(request.POST["next"])
    return _detail_page(request, inventory, reorder_form=form)


def _form_errors(form: Any) -> list[str]:
    return [
        f"{field}: {' '.join(errors)}" if field != "__all__" else " ".join(errors)
        for field, errors in form.errors.items()
    ]


@require_POST
@login_required
@stock_required
def inventory_settings_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    inventory = inventory_get_for_user(user=request.user, pk=pk)
    form = InventorySettingsForm(request.POST)
    if form.is_valid():
        try:
            inventory_update(by=request.user, inventory=inventory, **form.cleaned_data)
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(request, "Stock settings saved.")
            return redirect("materials:inventory-detail", pk=pk)
    return _detail_page(request, inventory, settings_form=form)


# --- Orders -------------------------------------------------------------------------------------

ORDER_FILTERS = ("open", "all", *PurchaseOrder.Status.values)


@login_required
@stock_required
def orders_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    status = request.GET.get("status") or "open"
    if status not in ORDER_FILTERS:
        status = "open"
    statuses: list[str] | None = (
        [str(PurchaseOrder.Status.DRAFT), str(PurchaseOrder.Status.SENT)]
        if status == "open"
        else None
        if status == "all"
        else [status]
    )
    node_id = _int(request.GET.get("node"))
    rows = purchase_order_list(user=user, status=statuses, node_id=node_id)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in (("status", status), ("node", node_id or "")) if v})
    return _render(
        request,
        "materials/orders.html",
        {
            "page": page,
            "status": status,
            "statuses": PurchaseOrder.Status.choices,
            "node_id": node_id,
            "nodes": stock_nodes(user=user).order_by("name"),
            "filtered": status != "open" or node_id is not None,
            "query": query,
            "receive_form": ReceiveForm(),
        },
    )


@require_POST
@login_required
@stock_required
def order_action_view(request: AuthenticatedHttpRequest, pk: int, action: str) -> HttpResponse:
    order = purchase_order_get_for_user(user=request.user, pk=pk)
    back = request.POST.get("next") or "materials:orders"
    try:
        if action == "send":
            order = purchase_order_send(by=request.user, order=order)
            done = f"Purchase order #{order.pk} sent."
        elif action == "receive":
            form = ReceiveForm(request.POST)
            if not form.is_valid():
                messages.error(request, "Not received: " + "; ".join(_form_errors(form)))
                return redirect(back)
            order = purchase_order_receive(by=request.user, order=order, **form.cleaned_data)
            done = (
                f"Purchase order #{order.pk} received: {order.received_quantity} "
                f"{order.inventory.material.unit} added to stock."
            )
        elif action == "cancel":
            order = purchase_order_cancel(
                by=request.user, order=order, note=request.POST.get("note", "")
            )
            done = f"Purchase order #{order.pk} cancelled."
        else:
            raise ValidationError(f"Unknown action {action!r}.")
    except SERVICE_ERRORS as exc:
        messages.error(request, "Not changed: " + "; ".join(error_messages(exc)))
    else:
        messages.success(request, done)
    return redirect(back)


# --- Spools -------------------------------------------------------------------------------------


@login_required
@stock_required
def spools_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The vendor's spools (swatch, colour and material in words, grams left, where loaded) and
    its printers with the spool each holds; load and unload from here."""
    user = request.user
    spools = list(spool_list(user=user).select_related("vendor").order_by("material__name", "pk"))
    printers = list(spool_nodes(user=user).order_by("name"))
    by_vendor: dict[int, list[Any]] = {}
    for node in printers:
        by_vendor.setdefault(node.vendor_id, []).append(node)
    rows = [
        {
            "spool": spool,
            "colour": colour_words(spool.colour_hex),
            "low": spool.remaining_g <= spool_low_g(),
            # the vendor's printers that print the spool's material and do not hold it now
            "targets": [
                {"node": node, "replaces": _replaces(node)}
                for node in by_vendor.get(spool.vendor_id, [])
                if node.pk != spool.node_id and _prints(node, spool)
            ],
        }
        for spool in spools
    ]
    loaded = {spool.node_id: spool for spool in spools if spool.node_id is not None}
    printer_rows = [
        {
            "node": node,
            "spool": loaded.get(node.pk),
            "colour": colour_words(loaded[node.pk].colour_hex) if node.pk in loaded else "",
        }
        for node in printers
    ]
    context = {"rows": rows, "printers": printer_rows, "low_g": spool_low_g()}
    return _render(request, "materials/spools.html", context)


def _replaces(node: Any) -> str:
    """What loading a spool on `node` takes off it, in words ("" when it holds none)."""
    loaded = getattr(node, "loaded_spool", None)  # DoesNotExist is an AttributeError here
    if loaded is None:
        return ""
    return f"{colour_words(loaded.colour_hex)} {loaded.material.name}"


def _prints(node: Any, spool: Any) -> bool:
    wanted = match_key(spool.material.name, kind="material")
    return any(match_key(m, kind="material") == wanted for m in node.materials or [])


@require_POST
@login_required
@stock_required
def spool_load_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    spool = spool_get_for_user(user=request.user, pk=pk)
    node_id = _int(request.POST.get("node"))
    if node_id is None:
        messages.error(request, "Not loaded: choose a printer.")
        return redirect("materials:spools")
    node = stock_node_get(user=request.user, pk=node_id)
    try:
        spool, previous = spool_load(by=request.user, spool=spool, node=node)
    except SERVICE_ERRORS as exc:
        messages.error(request, "Not loaded: " + "; ".join(error_messages(exc)))
    else:
        done = f"{_spool_words(spool)} is loaded on {node.name}."
        if previous is not None:
            done += f" {_spool_words(previous)} came off it."
        messages.success(request, done)
    return redirect("materials:spools")


@require_POST
@login_required
@stock_required
def spool_unload_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    spool = spool_get_for_user(user=request.user, pk=pk)
    was = spool.node.name if spool.node is not None else None
    try:
        spool = spool_unload(by=request.user, spool=spool)
    except SERVICE_ERRORS as exc:
        messages.error(request, "Not unloaded: " + "; ".join(error_messages(exc)))
    else:
        where = f" from {was}" if was else ""
        messages.success(request, f"{_spool_words(spool)} is unloaded{where}.")
    return redirect("materials:spools")


def _spool_words(spool: Any) -> str:
    return f"The {colour_words(spool.colour_hex)} {spool.material.name} spool"


# --- Catalog ------------------------------------------------------------------------------------


@login_required
def catalog_view(
    request: AuthenticatedHttpRequest, form: MaterialForm | None = None
) -> HttpResponse:
    category = request.GET.get("category") or ""
    if category not in Material.Category.values:
        category = ""
    q = (request.GET.get("q") or "").strip()
    rows = material_list(category=category or None, q=q or None)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    can_edit = catalog_can_edit(user=request.user)
    blank = MaterialForm(initial={"currency": settings.JOBS_CURRENCY}) if can_edit else None
    return _render(
        request,
        "materials/catalog.html",
        {
            "page": page,
            "category": category,
            "categories": Material.Category.choices,
            "q": q,
            "filtered": bool(category or q),
            "query": urlencode({k: v for k, v in (("category", category), ("q", q)) if v}),
            "can_edit": can_edit,
            "form": form or blank,
            "form_open": form is not None,
        },
        status=400 if form is not None else 200,
    )


@require_POST
@login_required
def catalog_create_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not catalog_can_edit(user=request.user):
        raise PermissionDenied("Only administrators change the material catalog.")
    form = MaterialForm(request.POST)
    if form.is_valid():
        try:
            material = material_create(by=request.user, **form.service_values())
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(request, f"{material.name} added to the catalog.")
            return redirect("materials:catalog")
    return catalog_view(request, form=form)


@login_required
def material_edit_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    if not catalog_can_edit(user=request.user):
        raise PermissionDenied("Only administrators change the material catalog.")
    material = get_object_or_404(Material, pk=pk)
    if request.method == "POST":
        form = MaterialForm(request.POST)
        if form.is_valid():
            try:
                material_update(
                    by=request.user,
                    material=material,
                    **form.service_values(specs=material.specs),
                )
            except SERVICE_ERRORS as exc:
                form_add_service_error(form, exc)
            else:
                messages.success(request, f"{material.name} saved.")
                return redirect("materials:catalog")
        status = 400
    else:
        form = MaterialForm(initial=MaterialForm.initial_for(material))
        status = 200
    return _render(
        request, "materials/material_form.html", {"form": form, "material": material}, status
    )

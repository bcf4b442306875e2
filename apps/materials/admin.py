from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.materials.models import (
    Inventory,
    Material,
    MaterialUsage,
    PurchaseOrder,
    Spool,
    StockMovement,
)


@admin.register(Material)
class MaterialAdmin(admin.ModelAdmin[Material]):
    list_display = [
        "name",
        "category",
        "unit",
        "unit_cost",
        "currency",
        "supplier",
        "lead_time_days",
        "min_order_qty",
        "active",
    ]
    list_filter = ["category", "unit", "active"]
    search_fields = ["name"]


class MovementInline(admin.TabularInline[StockMovement, Inventory]):
    model = StockMovement
    extra = 0
    fields = ("at", "kind", "delta", "quantity_after", "part", "purchase_order", "by", "note")
    readonly_fields = fields
    ordering = ["-at", "-id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the ledger is written by the services only


@admin.register(Inventory)
class InventoryAdmin(admin.ModelAdmin[Inventory]):
    list_display = [
        "node",
        "material",
        "quantity",
        "reorder_point",
        "reorder_quantity",
        "auto_reorder",
        "loaded",
        "last_restock_at",
    ]
    list_filter = ["auto_reorder", "loaded", "material"]
    search_fields = ["node__name", "material__name"]
    # quantity changes only through the services, so every change has a movement
    readonly_fields = ["quantity", "last_restock_at", "telemetry_at"]
    inlines = [MovementInline]


@admin.register(Spool)
class SpoolAdmin(admin.ModelAdmin[Spool]):
    list_display = [
        "vendor",
        "material",
        "name",
        "colour_hex",
        "remaining_g",
        "node",
        "spoolman_id",
    ]
    list_filter = ["material", "vendor"]
    search_fields = ["name", "colour_hex", "node__name"]


@admin.register(PurchaseOrder)
class PurchaseOrderAdmin(admin.ModelAdmin[PurchaseOrder]):
    list_display = ["id", "inventory", "quantity", "total", "currency", "status", "origin"]
    list_filter = ["status", "origin"]
    readonly_fields = [
        "status",
        "origin",
        "reason",
        "created_by",
        "sent_at",
        "received_at",
        "received_quantity",
        "cancelled_at",
    ]


@admin.register(MaterialUsage)
class MaterialUsageAdmin(admin.ModelAdmin[MaterialUsage]):
    list_display = ["part", "job", "node", "material_name", "used_g", "waste_g", "source", "at"]
    list_filter = ["source", "outcome"]
    search_fields = ["material_name"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(StockMovement)
class StockMovementAdmin(admin.ModelAdmin[StockMovement]):
    list_display = ["inventory", "kind", "delta", "quantity_after", "by", "at"]
    list_filter = ["kind"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

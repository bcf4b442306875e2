from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from apps.core.models import TimeStampedModel
from apps.materials.catalog import SPEC_FIELDS, grams_per_unit

ZERO = Decimal("0")


def default_currency() -> str:
    return str(settings.JOBS_CURRENCY)


class Material(TimeStampedModel):
    """One material of the catalog, bought in `unit` at `unit_cost` from `supplier`. Parts name
    their material as free text; it is matched here by normalised name."""

    class Category(models.TextChoices):
        FILAMENT = "filament", "Filament (FDM)"
        RESIN = "resin", "Resin (SLA)"
        POWDER = "powder", "Powder (SLS)"
        METAL = "metal", "Metal stock"
        COMPOSITE = "composite", "Composite"
        SHEET = "sheet", "Sheet stock"
        OTHER = "other", "Other"

    class Unit(models.TextChoices):
        G = "g", "g"
        KG = "kg", "kg"
        L = "l", "litre"
        SHEET = "sheet", "sheet"
        BAR = "bar", "bar"
        M = "m", "metre"

    name = models.CharField(max_length=60)
    category = models.CharField(max_length=12, choices=Category.choices)
    # density_g_cm3 (required) and what the simulations read: tensile_strength_mpa,
    # youngs_modulus_gpa, max_service_temp_c (see apps/materials/catalog.py SPEC_FIELDS)
    specs = models.JSONField(default=dict)
    unit = models.CharField(max_length=6, choices=Unit.choices, default=Unit.KG)
    grams_per_item = models.DecimalField(
        max_digits=12,
        decimal_places=3,
        null=True,
        blank=True,
        help_text="Weight of one sheet, bar or metre, in grams (g, kg and litres need none).",
    )
    unit_cost = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(ZERO)]
    )
    currency = models.CharField(max_length=3, default=default_currency)
    supplier = models.ForeignKey(
        "users.Organization",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="supplied_materials",
        limit_choices_to={"kind": "vendor"},
    )
    lead_time_days = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    min_order_qty = models.DecimalField(
        max_digits=14, decimal_places=3, default=ZERO, validators=[MinValueValidator(ZERO)]
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="unique_material_name_ci"),
            models.CheckConstraint(
                condition=Q(unit_cost__gte=0), name="material_cost_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(min_order_qty__gte=0), name="material_moq_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        specs = self.specs if isinstance(self.specs, dict) else None
        if specs is None:
            errors["specs"] = ["An object of property -> number."]
        else:
            for key, (label, required) in SPEC_FIELDS.items():
                value = specs.get(key)
                if value is None:
                    if required:
                        errors.setdefault("specs", []).append(f"{key}: {label} is required.")
                elif isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    errors.setdefault("specs", []).append(f"{key}: must be a number above 0.")
        if self.grams_per_item is not None and self.grams_per_item <= 0:
            errors["grams_per_item"] = ["Must be above 0."]
        if errors:
            raise ValidationError(errors)

    @property
    def density(self) -> float | None:
        value = (self.specs or {}).get("density_g_cm3")
        return float(value) if isinstance(value, int | float) and value > 0 else None

    @property
    def grams_per_unit(self) -> Decimal | None:
        """Grams in one unit of stock; None when unknown (a sheet without its weight)."""
        return grams_per_unit(self.unit, density_g_cm3=self.density, per_item_g=self.grams_per_item)


class Inventory(TimeStampedModel):
    """The stock of one material at one node, in the material's unit. Every change is a
    StockMovement, so the quantity can be explained. `loaded` marks the material in the machine
    now: the node's `material_remaining` telemetry (grams) is about that one."""

    node = models.ForeignKey(
        "vendors.FabricationNode", on_delete=models.CASCADE, related_name="inventories"
    )
    material = models.ForeignKey(Material, on_delete=models.PROTECT, related_name="inventories")
    quantity = models.DecimalField(max_digits=14, decimal_places=3, default=ZERO)
    reorder_point = models.DecimalField(max_digits=14, decimal_places=3, default=ZERO)
    reorder_quantity = models.DecimalField(max_digits=14, decimal_places=3, default=ZERO)
    reorder_point_auto = models.BooleanField(
        default=True, help_text="Recompute the reorder point daily from recent usage."
    )
    auto_reorder = models.BooleanField(
        default=True, help_text="Draft a purchase order when stock falls to the reorder point."
    )
    loaded = models.BooleanField(default=False)
    last_restock_at = models.DateTimeField(null=True, blank=True)
    telemetry_at = models.DateTimeField(null=True, blank=True)  # last material_remaining applied

    class Meta:
        ordering = ["node__name", "material__name"]
        verbose_name_plural = "inventories"
        constraints = [
            models.UniqueConstraint(fields=["node", "material"], name="one_inventory_per_material"),
            models.UniqueConstraint(
                fields=["node"], condition=Q(loaded=True), name="one_loaded_material_per_node"
            ),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="stock_not_negative"),
            models.CheckConstraint(
                condition=Q(reorder_point__gte=0, reorder_quantity__gte=0),
                name="reorder_figures_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.material} at {self.node_id}: {self.quantity} {self.material.unit}"

    @property
    def unit(self) -> str:
        return self.material.unit

    @property
    def is_low(self) -> bool:
        return self.reorder_point > 0 and self.quantity <= self.reorder_point


class PurchaseOrder(TimeStampedModel):
    """An order of one material for one node's stock: draft -> sent -> received (which
    restocks), or cancelled. The platform drafts one by itself (origin auto, created_by None)
    when stock falls to the reorder point; at most one such order is open per stock."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENT = "sent", "Sent"
        RECEIVED = "received", "Received"
        CANCELLED = "cancelled", "Cancelled"

    class Origin(models.TextChoices):
        AUTO = "auto", "Automatic reorder"
        MANUAL = "manual", "Manual"

    inventory = models.ForeignKey(
        Inventory, on_delete=models.PROTECT, related_name="purchase_orders"
    )
    supplier = models.ForeignKey(
        "users.Organization",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="purchase_orders_received",
    )
    quantity = models.DecimalField(max_digits=14, decimal_places=3)
    unit_cost = models.DecimalField(max_digits=12, decimal_places=2)
    total = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    origin = models.CharField(max_length=6, choices=Origin.choices)
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    expected_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    received_quantity = models.DecimalField(max_digits=14, decimal_places=3, null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)  # on receipt or cancellation

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["inventory"],
                condition=Q(origin="auto", status__in=["draft", "sent"]),
                name="one_open_auto_order_per_inventory",
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"PO #{self.pk}: {self.quantity} of {self.inventory.material}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_ORDER_STATUSES


OPEN_ORDER_STATUSES = (PurchaseOrder.Status.DRAFT, PurchaseOrder.Status.SENT)


class StockMovement(models.Model):
    """One change of an inventory's quantity, with what caused it: a part's usage or waste, a
    restock (a received order or by hand), a telemetry correction or a manual adjustment."""

    class Kind(models.TextChoices):
        USAGE = "usage", "Usage"
        WASTE = "waste", "Waste"
        RESTOCK = "restock", "Restock"
        TELEMETRY = "telemetry", "Telemetry correction"
        ADJUSTMENT = "adjustment", "Manual adjustment"

    inventory = models.ForeignKey(Inventory, on_delete=models.CASCADE, related_name="movements")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    delta = models.DecimalField(max_digits=14, decimal_places=3)
    quantity_after = models.DecimalField(max_digits=14, decimal_places=3)
    part = models.ForeignKey(
        "jobs.Part", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    purchase_order = models.ForeignKey(
        PurchaseOrder, null=True, blank=True, on_delete=models.SET_NULL, related_name="movements"
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["inventory", "at"])]

    def __str__(self) -> str:
        return f"{self.inventory_id} {self.kind} {self.delta:+}"


class MaterialUsage(models.Model):
    """What one finished part took from stock. `used_g` is everything it consumed, `waste_g`
    the share of that not in the part (supports, purge, chips, offcuts; all of it for a failed
    part). From the estimate, corrected by what the node reported. One row per part."""

    class Source(models.TextChoices):
        ESTIMATE = "estimate", "Estimate"
        REPORTED = "reported", "Reported by the node"

    class Outcome(models.TextChoices):
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    part = models.OneToOneField(
        "jobs.Part", on_delete=models.CASCADE, related_name="material_usage"
    )
    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="material_usages")
    node = models.ForeignKey(
        "vendors.FabricationNode",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="material_usages",
    )
    material = models.ForeignKey(
        Material, null=True, blank=True, on_delete=models.SET_NULL, related_name="usages"
    )
    material_name = models.CharField(max_length=60)  # the part's own words
    inventory = models.ForeignKey(
        Inventory, null=True, blank=True, on_delete=models.SET_NULL, related_name="usages"
    )
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    used_g = models.FloatField(validators=[MinValueValidator(0)])
    waste_g = models.FloatField(validators=[MinValueValidator(0)])
    source = models.CharField(max_length=10, choices=Source.choices)
    # why stock was or was not decremented (no inventory, telemetry already counted it, ...)
    stock_note = models.CharField(max_length=200, blank=True)
    # the spool loaded on the node when the part finished, the grams taken off it (`used_g`,
    # or what was left on it when that was less) and, when nothing was taken, why not
    spool = models.ForeignKey(
        "materials.Spool", null=True, blank=True, on_delete=models.SET_NULL, related_name="usages"
    )
    spool_taken_g = models.FloatField(default=0.0, validators=[MinValueValidator(0)])
    spool_note = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["node", "material", "at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(used_g__gte=0, waste_g__gte=0, waste_g__lte=models.F("used_g")),
                name="usage_waste_within_used",
            )
        ]

    def __str__(self) -> str:
        return f"part {self.part_id}: {self.used_g:g} g {self.material_name}"

    @property
    def in_part_g(self) -> float:
        return max(self.used_g - self.waste_g, 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {"used_g": self.used_g, "waste_g": self.waste_g, "source": self.source}


class Spool(TimeStampedModel):
    """One spool (or bottle) of a material at a vendor: its colour, the grams left on it, and
    the printer it is loaded on, if any (a printer holds one spool at a time). Imported from
    Spoolman (`spoolman_id`) or entered by hand."""

    vendor = models.ForeignKey("users.Organization", on_delete=models.CASCADE, related_name="+")
    material = models.ForeignKey(Material, on_delete=models.PROTECT, related_name="spools")
    name = models.CharField(max_length=120, blank=True)  # the filament's product name
    colour_hex = models.CharField(max_length=7, help_text="#rrggbb, lower case")
    remaining_g = models.FloatField(validators=[MinValueValidator(0)])
    node = models.OneToOneField(
        "vendors.FabricationNode",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="loaded_spool",
    )
    spoolman_id = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["vendor_id", "material__name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["vendor", "spoolman_id"],
                condition=Q(spoolman_id__isnull=False),
                name="spool_unique_spoolman_id_per_vendor",
            ),
            models.CheckConstraint(
                condition=Q(remaining_g__gte=0), name="spool_remaining_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.material.name} {self.colour_hex} ({self.remaining_g:.0f} g)"

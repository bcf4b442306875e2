"""Forms of the materials pages. Field names match the services' arguments, so a service's
ValidationError lands on the field it names (`apps.core.forms.form_add_service_error`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from apps.core.forms import form_field
from apps.materials.catalog import SPEC_FIELDS
from apps.materials.models import Material
from apps.users.models import Organization
from apps.vendors.models import FabricationNode

STEP = forms.NumberInput(attrs={"step": "0.001"})


def _quantity(label: str, *, required: bool = True, minimum: int | None = 0, **kw: Any) -> Any:
    return forms.DecimalField(
        label=label,
        required=required,
        min_value=minimum,
        widget=STEP,
        max_digits=14,
        decimal_places=3,
        **kw,
    )


class InventoryCreateForm(forms.Form):
    node = forms.ModelChoiceField(queryset=FabricationNode.objects.none())
    material = forms.ModelChoiceField(queryset=Material.objects.none())
    quantity = _quantity("Opening stock", initial=0, help_text="In the material's unit.")
    reorder_point = _quantity(
        "Reorder point", initial=0, help_text="0: computed daily from usage once there is some."
    )
    reorder_quantity = _quantity(
        "Reorder quantity", initial=0, help_text="0: enough to reach twice the reorder point."
    )
    auto_reorder = forms.BooleanField(
        required=False, initial=True, label="Draft an order when stock falls to the point"
    )
    loaded = forms.BooleanField(
        required=False, label="Loaded in the machine (its remaining-material reading sets stock)"
    )

    def __init__(self, *args: Any, nodes: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        form_field(self, "node", forms.ModelChoiceField).queryset = nodes
        materials = Material.objects.filter(active=True)
        form_field(self, "material", forms.ModelChoiceField).queryset = materials


class InventorySettingsForm(forms.Form):
    reorder_point = _quantity("Reorder point")
    reorder_point_auto = forms.BooleanField(
        required=False, label="Recompute the reorder point daily from usage"
    )
    reorder_quantity = _quantity("Reorder quantity")
    auto_reorder = forms.BooleanField(
        required=False, label="Draft an order when stock falls to the point"
    )
    loaded = forms.BooleanField(required=False, label="Loaded in the machine")


class AdjustForm(forms.Form):
    delta = _quantity("Change (+/-)", required=False, minimum=None)
    quantity = _quantity("Or the counted quantity", required=False)
    note = forms.CharField(
        max_length=300, required=False, label="Why", help_text="Required: the ledger keeps it."
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for key in ("delta", "quantity"):
            if data.get(key) is None:
                data.pop(key, None)  # the service says when neither or both were given
        return data


class RestockForm(forms.Form):
    quantity = _quantity("Quantity received", minimum=None)
    note = forms.CharField(max_length=300, required=False, label="Note")


class ReorderForm(forms.Form):
    quantity = _quantity(
        "Quantity", required=False, minimum=None, help_text="Empty: the reorder rule's."
    )
    note = forms.CharField(max_length=500, required=False, label="Why")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("quantity") is None:
            data.pop("quantity", None)
        return data


class ReceiveForm(forms.Form):
    quantity = _quantity(
        "Quantity received", required=False, minimum=None, help_text="Empty: as ordered."
    )
    note = forms.CharField(max_length=500, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("quantity") is None:
            data.pop("quantity", None)
        return data


class MaterialForm(forms.Form):
    name = forms.CharField(max_length=60)
    category = forms.ChoiceField(choices=Material.Category.choices)
    unit = forms.ChoiceField(choices=Material.Unit.choices, initial=Material.Unit.KG)
    grams_per_item = forms.DecimalField(
        required=False,
        max_digits=12,
        decimal_places=3,
        label="Grams per sheet, bar or metre",
        help_text="Only for sheet, bar and metre units.",
    )
    unit_cost = forms.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"))
    currency = forms.CharField(min_length=3, max_length=3)
    supplier = forms.ModelChoiceField(
        queryset=Organization.objects.filter(kind=Organization.Kind.VENDOR), required=False
    )
    lead_time_days = forms.IntegerField(min_value=1, max_value=365, initial=7)
    min_order_qty = _quantity("Minimum order quantity", initial=0)
    active = forms.BooleanField(required=False, initial=True)
    density_g_cm3 = forms.FloatField(label=SPEC_FIELDS["density_g_cm3"][0])
    tensile_strength_mpa = forms.FloatField(
        label=SPEC_FIELDS["tensile_strength_mpa"][0], required=False
    )
    youngs_modulus_gpa = forms.FloatField(
        label=SPEC_FIELDS["youngs_modulus_gpa"][0], required=False
    )
    max_service_temp_c = forms.FloatField(
        label=SPEC_FIELDS["max_service_temp_c"][0], required=False
    )

    SPEC_KEYS = tuple(SPEC_FIELDS)

    def service_values(self, specs: dict[str, Any] | None = None) -> dict[str, Any]:
        """The cleaned data as material_create/update arguments: the spec fields go into
        `specs` (keeping any other properties the material already has)."""
        data = dict(self.cleaned_data)
        merged = dict(specs or {})
        for key in self.SPEC_KEYS:
            value = data.pop(key, None)
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        data["specs"] = merged
        return data

    @classmethod
    def initial_for(cls, material: Material) -> dict[str, Any]:
        initial = {
            field: getattr(material, field)
            for field in (
                "name",
                "category",
                "unit",
                "grams_per_item",
                "unit_cost",
                "currency",
                "lead_time_days",
                "min_order_qty",
                "active",
            )
        }
        initial["supplier"] = material.supplier_id
        for key in cls.SPEC_KEYS:
            initial[key] = (material.specs or {}).get(key)
        return initial

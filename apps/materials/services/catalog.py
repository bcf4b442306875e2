"""The material catalog: administrators add and change materials; everyone reads it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from apps.core.exceptions import Conflict
from apps.materials.catalog import install_standard_catalog, normalise_name
from apps.materials.models import Material
from apps.users.models import Organization, User
from apps.users.roles import Action, Scope, scope_for

FIELDS = (
    "name",
    "category",
    "specs",
    "unit",
    "grams_per_item",
    "unit_cost",
    "currency",
    "supplier",
    "lead_time_days",
    "min_order_qty",
    "active",
)


def catalog_can_edit(*, user: User) -> bool:
    return scope_for(user, Action.SYSTEM_ADMIN) == Scope.ALL


def _save(material: Material, fields: list[str] | None) -> Material:
    if material.supplier is not None and material.supplier.kind != Organization.Kind.VENDOR:
        raise ValidationError({"supplier": ["The supplier must be a vendor company."]})
    material.name = " ".join(material.name.split())
    material.currency = (material.currency or "").upper()
    material.full_clean(validate_constraints=False)
    clash = Material.objects.filter(name__iexact=normalise_name(material.name)).exclude(
        pk=material.pk
    )
    if clash.exists():
        raise Conflict(f"The catalog already has {material.name}.", field="name")
    try:
        with transaction.atomic():
            if fields is None:
                material.save()
            else:
                material.save(update_fields=[*fields, "updated_at"])
    except IntegrityError:
        raise Conflict(f"The catalog already has {material.name}.", field="name") from None
    return material


@transaction.atomic
def material_create(*, by: User, **values: Any) -> Material:
    if not catalog_can_edit(user=by):
        raise PermissionDenied("Only administrators change the material catalog.")
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ValidationError({key: ["Not a material field."] for key in unknown})
    values.setdefault("currency", settings.JOBS_CURRENCY)
    return _save(Material(**values), None)


@transaction.atomic
def material_update(*, by: User, material: Material, **changes: Any) -> Material:
    if not catalog_can_edit(user=by):
        raise PermissionDenied("Only administrators change the material catalog.")
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise ValidationError({key: ["Not a material field."] for key in unknown})
    for key, value in changes.items():
        setattr(material, key, value)
    return _save(material, list(changes) or None)


def catalog_install_standard() -> int:
    """Adds the standard materials that are missing (the migration does it once)."""
    return install_standard_catalog(Material, settings.JOBS_CURRENCY)

"""Writes to a site's or node's energy set-up: sources, emission factors (admins), power caps,
and battery state of charge from telemetry."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.energy.models import EmissionFactor, EnergySource, SitePowerCap, SourceKind
from apps.energy.selectors import FACTORS_CACHE_KEY, energy_nodes, energy_sites
from apps.users.models import Organization, User
from apps.users.roles import Action, Scope, scope_for
from apps.vendors.models import FabricationNode

# What of a source its manager sets: the API's serializers and the page's form take these.
SOURCE_FIELDS = (
    "name",
    "kind",
    "capacity_kw",
    "efficiency",
    "status",
    "capacity_kwh",
    "soc_pct",
    "reserve_pct",
)
BATTERY_ONLY = ("capacity_kwh", "soc_pct")


def _require_site(*, by: User, site: Organization) -> None:
    if not energy_sites(user=by).filter(pk=site.pk).exists():
        raise PermissionDenied("You do not manage this site's energy.")


def _require_node(*, by: User, node: FabricationNode) -> None:
    if not energy_nodes(user=by).filter(pk=node.pk).exists():
        raise PermissionDenied("You do not manage this node's energy.")


def _source_check(source: EnergySource) -> None:
    if source.kind != SourceKind.BATTERY:
        given = [f for f in BATTERY_ONLY if getattr(source, f) is not None]
        if given:
            raise ValidationError({f: ["Only batteries have this."] for f in given})
    elif source.capacity_kwh is None:
        raise ValidationError({"capacity_kwh": ["A battery needs its capacity in kWh."]})
    source.full_clean()


@transaction.atomic
def source_create(
    *,
    by: User,
    site: Organization | None = None,
    node: FabricationNode | None = None,
    **fields: Any,
) -> EnergySource:
    """A source of a site (every node there may use it) or of one node: exactly one of them."""
    if (site is None) == (node is None):
        raise ValidationError("A source belongs to a site or to a node: give exactly one.")
    if site is not None:
        if site.kind not in (Organization.Kind.VENDOR, Organization.Kind.OPERATOR_SITE):
            raise ValidationError({"site": ["Sites are vendor companies or operator sites."]})
        _require_site(by=by, site=site)
    if node is not None:
        _require_node(by=by, node=node)
    unknown = set(fields) - set(SOURCE_FIELDS)
    if unknown:
        raise ValidationError({k: ["Unknown field."] for k in sorted(unknown)})
    source = EnergySource(site=site, node=node, **fields)
    _source_check(source)
    source.save()
    return source


def _require_source(*, by: User, source: EnergySource) -> None:
    if source.node is not None:
        _require_node(by=by, node=source.node)
    elif source.site is not None:
        _require_site(by=by, site=source.site)


@transaction.atomic
def source_update(*, by: User, source: EnergySource, **fields: Any) -> EnergySource:
    _require_source(by=by, source=source)
    unknown = set(fields) - set(SOURCE_FIELDS)
    if unknown:
        raise ValidationError({k: ["Unknown field."] for k in sorted(unknown)})
    for name, value in fields.items():
        setattr(source, name, value)
    _source_check(source)
    source.save(update_fields=[*fields, "updated_at"])
    return source


@transaction.atomic
def source_delete(*, by: User, source: EnergySource) -> None:
    _require_source(by=by, source=source)
    source.delete()


def node_battery_soc_update(*, node_id: int, soc_pct: float) -> int:
    """A node reports its battery's state of charge (telemetry extra `battery_soc_pct`): its
    own batteries take it. Returns how many rows changed."""
    if not 0 <= soc_pct <= 100:
        return 0
    return EnergySource.objects.filter(node_id=node_id, kind=SourceKind.BATTERY).update(
        soc_pct=soc_pct
    )


@transaction.atomic
def emission_factor_update(
    *, by: User | None, kind: str, kg_co2e_per_kwh: float, note: str | None = None
) -> EmissionFactor:
    """Admins set a kind's factor (`by` None: the platform, e.g. Django admin after its own
    permission check). Recorded consumption keeps the factor it was computed with."""
    if by is not None and scope_for(by, Action.ENERGY_MANAGE) != Scope.ALL:
        raise PermissionDenied("Only administrators change emission factors.")
    if kind not in SourceKind.values:
        raise ValidationError({"kind": [f"One of {', '.join(SourceKind.values)}."]})
    factor = EmissionFactor.objects.filter(kind=kind).first() or EmissionFactor(kind=kind)
    factor.kg_co2e_per_kwh = kg_co2e_per_kwh
    if note is not None:
        factor.note = note
    factor.full_clean()
    factor.save()
    # now, and again after commit: a reader between the two may have cached the old value
    cache.delete(FACTORS_CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(FACTORS_CACHE_KEY))
    return factor


@transaction.atomic
def site_cap_save(
    *,
    by: User,
    site: Organization,
    max_kw: float | None,
    renewable_price_per_kwh: Decimal | None = None,
    currency: str | None = None,
) -> SitePowerCap:
    """Sets a site's power cap (None: no cap) and its own generation's price per kWh."""
    _require_site(by=by, site=site)
    cap = SitePowerCap.objects.filter(site=site).first() or SitePowerCap(site=site)
    cap.max_kw = max_kw
    cap.renewable_price_per_kwh = renewable_price_per_kwh
    if currency:
        cap.currency = currency.upper()
    cap.full_clean()
    cap.save()
    return cap

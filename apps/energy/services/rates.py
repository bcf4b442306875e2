"""Hourly grid prices and renewable forecasts per site: stored in batches (API, portal form) or
imported from CSV (API upload, `manage.py import_energy_rates`). A batch stores its good items
and reports the bad ones by index (CSV: by line); a (site, hour) already stored is replaced.

CSV columns: site (id or slug), hour (ISO 8601 with a time zone, on the hour), price (per kWh),
optional renewable_kw and currency."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.dateparse import parse_datetime

from apps.energy import conf
from apps.energy.models import HourlyRate
from apps.energy.selectors import SITE_KINDS, energy_sites
from apps.users.models import Organization, User

REQUIRED_COLUMNS = ("site", "hour", "price")
MAX_PRICE = Decimal("99999")
MAX_ITEMS = 20000


@dataclass
class RatesReport:
    stored: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"stored": self.stored, "errors": self.errors}


def _sites_for(by: User | None) -> dict[str, Organization]:
    if by is None:
        sites = Organization.objects.filter(kind__in=SITE_KINDS)
    else:
        sites = energy_sites(user=by)
    found: dict[str, Organization] = {}
    for site in sites:
        found[str(site.pk)] = site
        found[site.slug] = site
    return found


def _hour(value: Any) -> datetime:
    when = value if isinstance(value, datetime) else parse_datetime(str(value or "").strip())
    if when is None:
        raise ValueError("An ISO 8601 date and time, e.g. 2026-05-01T13:00:00Z.")
    if when.tzinfo is None:
        raise ValueError("Give the time zone (e.g. a trailing Z for UTC).")
    if (when.minute, when.second, when.microsecond) != (0, 0, 0):
        raise ValueError("Must be on the hour.")
    return when


def _price(value: Any) -> Decimal:
    try:
        price = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValueError("A number (money per kWh).") from None
    if not price.is_finite() or price < 0 or price > MAX_PRICE:
        raise ValueError(f"From 0 to {MAX_PRICE}.")
    return price


def _renewable(value: Any) -> float | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        kw = float(value)
    except (TypeError, ValueError):
        raise ValueError("A number of kW, or empty.") from None
    if not 0 <= kw <= 1e7:
        raise ValueError("From 0 kW.")
    return kw


def _rate(item: Mapping[str, Any], sites: dict[str, Organization], source: str) -> HourlyRate:
    errors: dict[str, str] = {}
    site = sites.get(str(item.get("site", "")).strip())
    if site is None:
        errors["site"] = "No such site that you manage (give its id or slug)."
    values: dict[str, Any] = {}
    for name, parse in (("hour", _hour), ("price", _price), ("renewable_kw", _renewable)):
        try:
            values[name] = parse(item.get(name))
        except ValueError as exc:
            errors[name] = str(exc)
    currency = str(item.get("currency") or conf.currency()).strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        errors["currency"] = "A three-letter currency code."
    if errors:
        raise ValidationError(errors)
    return HourlyRate(
        site=site,
        hour=values["hour"],
        price_per_kwh=values["price"],
        renewable_kw=values["renewable_kw"],
        currency=currency,
        source=source,
    )


def _messages(exc: ValidationError) -> dict[str, list[str]]:
    return exc.message_dict if hasattr(exc, "error_dict") else {"item": exc.messages}


@transaction.atomic
def rates_store(
    *,
    by: User | None,
    items: Sequence[Mapping[str, Any]],
    source: str = HourlyRate.Source.ENTERED,
    labels: Sequence[tuple[str, int]] | None = None,
) -> RatesReport:
    """Stores the good items (replacing what a site had for that hour) and reports the bad
    ones as {"index": i, "errors": {...}} (or {"line": n, ...} with CSV labels). `by` None is
    the platform (the import command): every site."""
    if by is not None and not energy_sites(user=by).exists():
        raise PermissionDenied("You manage no site's energy.")
    if len(items) > MAX_ITEMS:
        raise ValidationError({"items": [f"At most {MAX_ITEMS} rates at once."]})
    if source not in HourlyRate.Source.values:
        raise ValidationError({"source": [f"One of {', '.join(HourlyRate.Source.values)}."]})
    sites = _sites_for(by)
    report = RatesReport()
    good: dict[tuple[int, datetime], HourlyRate] = {}
    for index, item in enumerate(items):
        label = labels[index] if labels is not None else ("index", index)
        try:
            rate = _rate(item, sites, source)
        except ValidationError as exc:
            report.errors.append({label[0]: label[1], "errors": _messages(exc)})
            continue
        good[(rate.site_id, rate.hour)] = rate  # a later row for the same hour wins
    if good:
        HourlyRate.objects.bulk_create(
            list(good.values()),
            update_conflicts=True,
            unique_fields=["site", "hour"],
            update_fields=["price_per_kwh", "currency", "renewable_kw", "source", "updated_at"],
        )
    report.stored = len(good)
    return report


def rates_import_csv(
    *,
    by: User | None,
    text: str,
    source: str = HourlyRate.Source.IMPORTED,
    site: Organization | None = None,
) -> RatesReport:
    """Imports a CSV of rates (module docstring); bad rows are reported by line number. With
    `site`, rows that name no site are that site's (the column may then be left out)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = [c.strip().lower() for c in (reader.fieldnames or [])]
    required = [c for c in REQUIRED_COLUMNS if not (c == "site" and site is not None)]
    missing = [c for c in required if c not in columns]
    if missing:
        raise ValidationError(
            {"file": [f"Missing column(s): {', '.join(missing)} (header: site,hour,price)."]}
        )
    reader.fieldnames = columns
    items: list[dict[str, Any]] = []
    labels: list[tuple[str, int]] = []
    for row in reader:
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # blank line
        item = {k: v for k, v in row.items() if k is not None}
        if site is not None and not (item.get("site") or "").strip():
            item["site"] = str(site.pk)
        items.append(item)
        labels.append(("line", reader.line_num))
    return rates_store(by=by, items=items, source=source, labels=labels)

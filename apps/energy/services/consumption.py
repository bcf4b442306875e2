"""Energy consumption of finished parts: measured, sourced, priced and converted to carbon.

kWh, in order of trust:
1. telemetry: the node's `power_kw` integrated over [started_at, finished_at] when its points
   cover at least MIN_COVERAGE of the run (apps.energy.calc);
2. reported: what the node said the part used (`energy_kwh` in the completion report);
3. estimate: the part's estimate (`estimates["energy_kwh"]`), for a failed part only the share
   of its estimated duration it ran; without one, rated power x hours x 0.5.
Source: `calc.source_pick` over the node's and its site's sources at the run's midpoint for the
run's average load. Cost: grid energy at each clock hour's HourlyRate of the site (the default
grid price where none is stored); own generation at the site's own price. Carbon: kWh x the
chosen kind's emission factor."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.energy import conf
from apps.energy.calc import (
    MAX_GAP_S,
    MIN_COVERAGE,
    co2e_kg,
    energy_cost,
    kwh_by_hour,
    money,
    site_key,
    source_pick,
    spread_by_hour,
    telemetry_coverage,
)
from apps.energy.models import Consumption, HourlyRate, SitePowerCap
from apps.energy.selectors import emission_factors, node_sources
from apps.jobs.models import Part, Status
from apps.jobs.providers import job_panel_changed
from apps.telemetry.selectors import point_range
from apps.vendors.models import FabricationNode

logger = logging.getLogger(__name__)

FALLBACK_UTILISATION = 0.5
RECONCILE_DAYS = 7
PRICE_STEP = Decimal("0.00001")


@dataclass(frozen=True)
class Measured:
    kwh: float
    method: str
    coverage: float | None
    by_hour: dict[datetime, float]


def _reported_kwh(part: Part, report: dict[str, Any] | None) -> float | None:
    value = (report or {}).get("energy_kwh")
    if value is None:
        value = part.reported_energy_kwh
    return float(value) if value is not None else None


def _estimated_kwh(part: Part, node: FabricationNode, hours: float) -> float:
    estimates = part.estimates or {}
    kwh = estimates.get("energy_kwh")
    if kwh is None:
        return node.rated_power_kw * hours * FALLBACK_UTILISATION
    kwh = float(kwh)
    duration = float(estimates.get("duration_h") or 0)
    if part.status == Status.FAILED and duration > 0:
        kwh *= min(1.0, hours / duration)  # it stopped part way
    return kwh


def part_energy_measure(
    *, part: Part, node: FabricationNode, report: dict[str, Any] | None = None
) -> Measured:
    """The kWh a finished part drew and how it is known (module docstring)."""
    assert part.started_at is not None and part.finished_at is not None
    start, end = part.started_at, part.finished_at
    margin = timedelta(seconds=MAX_GAP_S)
    points = list(
        point_range(node_id=node.pk, start=start - margin, end=end + margin)
        .filter(power_kw__isnull=False)
        .values_list("time", "power_kw")
    )
    times = [t for t, _ in points]
    kw = [p for _, p in points]
    coverage = telemetry_coverage(times, start=start, end=end) if points else 0.0
    if points and coverage >= MIN_COVERAGE:
        by_hour = kwh_by_hour(times, kw, start=start, end=end)
        return Measured(sum(by_hour.values()), Consumption.Method.TELEMETRY, coverage, by_hour)
    hours = max((end - start).total_seconds() / 3600, 0.0)
    reported = _reported_kwh(part, report)
    if reported is not None:
        method, kwh = Consumption.Method.REPORTED, reported
    else:
        method, kwh = Consumption.Method.ESTIMATE, _estimated_kwh(part, node, hours)
    return Measured(kwh, method, coverage, spread_by_hour(kwh, start=start, end=end))


def _price(
    *, site_id: int, kind: str, by_hour: dict[datetime, float], kwh: float
) -> tuple[Decimal, Decimal, str]:
    """(cost, price per kWh, currency) of `by_hour` drawn from `kind` at the site."""
    cap = SitePowerCap.objects.filter(site_id=site_id).first()
    currency = cap.currency if cap else conf.currency()
    if kind != "grid":
        own = cap.renewable_price_per_kwh if cap else None
        price = own if own is not None else conf.default_renewable_price()
        return energy_cost(kwh, price), price, currency
    rates = {r.hour: r for r in HourlyRate.objects.filter(site_id=site_id, hour__in=list(by_hour))}
    default = conf.default_grid_price()
    cost = Decimal("0")
    for hour, hour_kwh in by_hour.items():
        rate = rates.get(hour)
        cost += Decimal(str(hour_kwh)) * (rate.price_per_kwh if rate else default)
        if rate is not None:
            currency = rate.currency
    if kwh <= 0:
        return money(cost), default, currency
    return money(cost), (cost / Decimal(str(kwh))).quantize(PRICE_STEP), currency


def consumption_record(*, part_id: int, report: dict[str, Any] | None = None) -> Consumption | None:
    """Records the energy of a finished part once (later calls return the same row); None for a
    part that never ran on a node."""
    existing = Consumption.objects.filter(part_id=part_id).first()
    if existing is not None:
        return existing
    part = Part.objects.select_related("job", "assigned_node").filter(pk=part_id).first()
    if (
        part is None
        or part.assigned_node is None
        or part.started_at is None
        or part.finished_at is None
    ):
        return None
    node = part.assigned_node
    measured = part_energy_measure(part=part, node=node, report=report)
    start, end = part.started_at, part.finished_at
    hours = max((end - start).total_seconds() / 3600, 1 / 3600)
    choice = source_pick(
        measured.kwh / hours,
        node_sources(node=node),
        start + (end - start) / 2,
        kwh=measured.kwh,
        longitude=node.longitude,
    )
    site_id = site_key(node)
    factor = emission_factors()[choice.kind]
    cost, price, currency = _price(
        site_id=site_id, kind=choice.kind, by_hour=measured.by_hour, kwh=measured.kwh
    )
    with transaction.atomic():
        row, created = Consumption.objects.get_or_create(
            part=part,
            defaults={
                "job": part.job,
                "node": node,
                "site_id": site_id,
                "started_at": start,
                "finished_at": end,
                "kwh": round(measured.kwh, 6),
                "method": measured.method,
                "coverage": None if measured.coverage is None else round(measured.coverage, 4),
                "source_kind": choice.kind,
                "source": choice.source,
                "reason": choice.reason[:300],
                "price_per_kwh": price,
                "cost": cost,
                "currency": currency,
                "emission_factor": factor,
                "co2e_kg": round(co2e_kg(measured.kwh, factor), 6),
            },
        )
        if created:
            job_panel_changed(part.job_id, "energy")
    return row


def consumption_reconcile(*, days: int = RECONCILE_DAYS, now: datetime | None = None) -> int:
    """Records consumption for parts that finished in the last `days` days without any (a
    missed signal, a worker that was down). Returns how many it recorded."""
    since = (now or timezone.now()) - timedelta(days=days)
    missing = (
        Part.objects.filter(
            status__in=[Status.COMPLETED, Status.FAILED],
            finished_at__gte=since,
            started_at__isnull=False,
            assigned_node__isnull=False,
            consumption__isnull=True,
        )
        .order_by("finished_at")
        .values_list("pk", flat=True)
    )
    recorded = 0
    for part_id in list(missing):
        try:
            if consumption_record(part_id=part_id) is not None:
                recorded += 1
        except Exception:  # one bad part must not stop the rest; it is retried tomorrow
            logger.exception("energy: could not record consumption of part %s", part_id)
    return recorded

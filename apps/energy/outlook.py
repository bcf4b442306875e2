"""The next hours of a site: grid price, renewable share, the price and carbon of its mix, and
its power cap. The jobs scheduler reads it through the energy provider (`energy_outlook_for`,
registered in receivers.py) every minute, so it costs a fixed handful of queries whatever the
number of nodes and hours: the nodes (with their sites' other nodes), the rates, the renewable
sources and the caps; emission factors come from the cache.

Hour i covers [now + i h, now + (i + 1) h) and takes the clock hour its midpoint falls in.
- Grid price: the stored HourlyRate of that clock hour; else the built-in forecast, the mean
  stored price at that hour of day over the site's last FORECAST_HISTORY_DAYS days (rows that
  were themselves forecasts left out); else the default grid price.
- Renewable kW: the stored rate's `renewable_kw`; else the site's online solar and wind
  sources (site-level and on its nodes): capacity x efficiency, solar times the daylight profile
  (apps.energy.calc) at the hour's midpoint and the site's mean node longitude.
- Renewable share r = min(1, renewable kW / reference load), the reference load being the sum of
  the site's nodes' rated power x REFERENCE_UTILISATION.
- Price = (1 - r) x grid price + r x the site's own generation price (its settings, else the
  default, 0); carbon = (1 - r) x grid factor + r x the renewable factor (solar and wind factors
  weighted by their kW that hour; their mean when the kW come from a rate).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Avg, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from apps.energy import conf
from apps.energy.calc import HOUR, blend, daylight, hour_floor, renewable_share
from apps.energy.models import EnergySource, HourlyRate, SitePowerCap
from apps.energy.selectors import emission_factors
from apps.jobs.providers import EnergyOutlook, SiteOutlook
from apps.vendors.models import FabricationNode

HALF_HOUR = timedelta(minutes=30)
MAX_HOURS = 24 * 14


@dataclass(frozen=True)
class HourOutlook:
    start: datetime
    clock_hour: datetime
    grid_price: float
    price_from: str  # "stored", "forecast" (from history) or "default"
    renewable_kw: float
    renewable_from: str  # "rate", "sources" or "none"
    renewable_share: float
    price: float
    carbon: float


@dataclass(frozen=True)
class SiteHours:
    site_id: int
    cap_kw: float | None
    reference_kw: float
    renewable_price: float
    currency: str
    hours: list[HourOutlook]

    def as_site_outlook(self) -> SiteOutlook:
        return SiteOutlook(
            price=tuple(round(h.price, 6) for h in self.hours),
            carbon=tuple(round(h.carbon, 6) for h in self.hours),
            cap_kw=self.cap_kw,
        )


@dataclass(frozen=True)
class SiteLoad:
    rated_kw: float
    longitude: float | None


def _key() -> Coalesce:
    return Coalesce("site_id", "vendor_id")


def site_loads(site_ids: Sequence[int]) -> dict[int, SiteLoad]:
    """Each site's working nodes' rated power and mean longitude (one query)."""
    rows = (
        FabricationNode.objects.annotate(key=_key())
        .filter(key__in=list(site_ids))
        .exclude(status=FabricationNode.Status.DECOMMISSIONED)
        .order_by()
        .values("key")
        .annotate(rated=Sum("rated_power_kw"), lon=Avg("longitude"))
    )
    return {r["key"]: SiteLoad(r["rated"] or 0.0, r["lon"]) for r in rows}


def sites_hours(
    *,
    site_ids: Sequence[int],
    now: datetime,
    hours: int,
    loads: dict[int, SiteLoad] | None = None,
) -> dict[int, SiteHours]:
    """The outlook of each site for `hours` hours from `now` (module docstring)."""
    ids = sorted(set(site_ids))
    if not ids:
        return {}
    hours = max(1, min(hours, MAX_HOURS))
    now = now.astimezone(UTC)  # clock hours and hours of day are UTC, as stored
    loads = site_loads(ids) if loads is None else loads
    first = hour_floor(now)
    since = first - timedelta(days=conf.FORECAST_HISTORY_DAYS)
    until = hour_floor(now + hours * HOUR + HALF_HOUR) + HOUR

    stored: dict[tuple[int, datetime], dict[str, Any]] = {}
    history: dict[tuple[int, int], list[Decimal]] = defaultdict(list)
    for row in HourlyRate.objects.filter(site_id__in=ids, hour__gte=since, hour__lt=until).values(
        "site_id", "hour", "price_per_kwh", "currency", "renewable_kw", "source"
    ):
        stored[(row["site_id"], row["hour"])] = dict(row)
        if row["hour"] < first and row["source"] != HourlyRate.Source.FORECAST:
            history[(row["site_id"], row["hour"].hour)].append(row["price_per_kwh"])

    sources: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for found in (
        EnergySource.objects.filter(kind__in=["solar", "wind"], status=EnergySource.Status.ONLINE)
        .filter(
            Q(site_id__in=ids)
            | Q(node__site_id__in=ids)
            | Q(node__site__isnull=True, node__vendor_id__in=ids)
        )
        .values("kind", "capacity_kw", "efficiency", "site_id", "node__site_id", "node__vendor_id")
    ):
        key = found["site_id"] or found["node__site_id"] or found["node__vendor_id"]
        sources[key].append(dict(found))

    caps: dict[int, dict[str, Any]] = {
        c["site_id"]: dict(c)
        for c in SitePowerCap.objects.filter(site_id__in=ids).values(
            "site_id", "max_kw", "renewable_price_per_kwh", "currency"
        )
    }
    factors = emission_factors()
    default_price = float(conf.default_grid_price())
    out = {}
    for site_id in ids:
        load = loads.get(site_id, SiteLoad(0.0, None))
        reference_kw = load.rated_kw * conf.REFERENCE_UTILISATION
        cap: dict[str, Any] = caps.get(site_id) or {}
        own_price = cap.get("renewable_price_per_kwh")
        if own_price is None:
            own_price = conf.default_renewable_price()
        renewable_price = float(own_price)
        currency = cap.get("currency") or conf.currency()
        rows = []
        for i in range(hours):
            start = now + i * HOUR
            mid = start + HALF_HOUR
            clock = hour_floor(mid)
            rate = stored.get((site_id, clock))
            if rate is not None:
                grid_price, price_from = float(rate["price_per_kwh"]), "stored"
                currency = rate["currency"] or currency
            elif history.get((site_id, clock.hour)):
                past = history[(site_id, clock.hour)]
                grid_price, price_from = float(sum(past) / len(past)), "forecast"
            else:
                grid_price, price_from = default_price, "default"
            kw_by_kind: dict[str, float] = defaultdict(float)
            for src in sources.get(site_id, []):
                kw = src["capacity_kw"] * src["efficiency"]
                if src["kind"] == "solar":
                    kw *= daylight(mid, longitude=load.longitude)
                kw_by_kind[src["kind"]] += kw
            if rate is not None and rate["renewable_kw"] is not None:
                renewable_kw, renewable_from = float(rate["renewable_kw"]), "rate"
            elif sum(kw_by_kind.values()) > 0:
                renewable_kw, renewable_from = sum(kw_by_kind.values()), "sources"
            else:
                renewable_kw, renewable_from = 0.0, "none"
            share = renewable_share(renewable_kw, reference_kw)
            total = sum(kw_by_kind.values())
            if total > 0:
                renewable_factor = sum(factors[k] * kw for k, kw in kw_by_kind.items()) / total
            else:
                renewable_factor = (factors["solar"] + factors["wind"]) / 2
            rows.append(
                HourOutlook(
                    start=start,
                    clock_hour=clock,
                    grid_price=grid_price,
                    price_from=price_from,
                    renewable_kw=renewable_kw,
                    renewable_from=renewable_from,
                    renewable_share=share,
                    price=blend(grid_price, renewable_price, share),
                    carbon=blend(factors["grid"], renewable_factor, share),
                )
            )
        out[site_id] = SiteHours(
            site_id=site_id,
            cap_kw=cap.get("max_kw"),
            reference_kw=reference_kw,
            renewable_price=renewable_price,
            currency=currency,
            hours=rows,
        )
    return out


def site_outlook(*, site_id: int, now: datetime, hours: int) -> SiteHours:
    return sites_hours(site_ids=[site_id], now=now, hours=hours)[site_id]


def energy_outlook_for(node_ids: Sequence[int], now: datetime, horizon_h: float) -> EnergyOutlook:
    """The energy provider the jobs scheduler consults (apps.jobs.providers)."""
    ids = list(node_ids)
    if not ids:
        return EnergyOutlook(currency=conf.currency())
    wanted = FabricationNode.objects.filter(pk__in=ids).annotate(key=_key()).values("key")
    rows = list(
        FabricationNode.objects.annotate(key=_key())
        .filter(key__in=Subquery(wanted))
        .values("id", "key", "kind", "rated_power_kw", "status", "longitude")
    )
    requested = set(ids)
    node_site: dict[int, int] = {}
    peak_h: dict[int, float] = {}
    rated: dict[int, float] = defaultdict(float)
    longitudes: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        if row["id"] in requested:
            node_site[row["id"]] = row["key"]
            peak_h[row["id"]] = conf.PEAK_HOURS_BY_KIND.get(row["kind"], conf.DEFAULT_PEAK_HOURS)
        if row["status"] != FabricationNode.Status.DECOMMISSIONED:
            rated[row["key"]] += row["rated_power_kw"]
            if row["longitude"] is not None:
                longitudes[row["key"]].append(row["longitude"])
    loads = {
        key: SiteLoad(kw, sum(longitudes[key]) / len(longitudes[key]) if longitudes[key] else None)
        for key, kw in rated.items()
    }
    hours = max(1, math.ceil(horizon_h))
    sites = sites_hours(site_ids=list(set(node_site.values())), now=now, hours=hours, loads=loads)
    currency = next((s.currency for s in sites.values()), conf.currency())
    return EnergyOutlook(
        sites={key: site.as_site_outlook() for key, site in sites.items()},
        node_site=node_site,
        peak_h=peak_h,
        currency=currency,
    )

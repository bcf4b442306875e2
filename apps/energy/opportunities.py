"""Energy-saving opportunities of one node, from its telemetry over the last WINDOW_DAYS days
(three small aggregate queries: hourly power, temperature counts, the site's rates).

Figures are scaled to a year by 365 / the days the node's data spans (at least one).
- Oversizing: the average load while the node reports power, against its rated power. Below
  OVERSIZING_RATIO the machine is much bigger than its work. A right-sized machine would be
  rated avg load / RIGHT_SIZE_UTILISATION; machines draw about OVERHEAD_SHARE of their rated
  power in fixed overheads (controls, cooling, heating, idling drives) while running, so the
  saving is OVERHEAD_SHARE x (rated - right-sized kW) x the yearly running hours.
- Thermal stress: the share of temperature readings above the kind's warning temperature (the
  platform's default threshold rules). Running hot wastes energy in cooling and heat losses:
  we count THERMAL_LOSS_SHARE of the energy drawn while hot as avoidable with better cooling,
  insulation or a lower set point.
- Peak shifting: the share of kWh drawn in peak-price hours (the most expensive quarter of the
  hours of day by the site's mean stored price over the window; without enough prices the
  DEFAULT_PEAK_HOURS with a PEAK_PREMIUM_SHARE premium over the default price). Moving that
  energy off-peak saves the peak kWh x (peak - off-peak price) per year; no kWh are saved.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from apps.energy import conf
from apps.energy.calc import money, site_key
from apps.energy.models import HourlyRate
from apps.telemetry.selectors import point_buckets, point_range
from apps.vendors.models import FabricationNode

WINDOW_DAYS = 30
OVERSIZING_RATIO = 0.3
RIGHT_SIZE_UTILISATION = 0.6
OVERHEAD_SHARE = 0.1
RUNNING_KW_SHARE = 0.05  # an hour counts as running when its mean power is above this x rated
THERMAL_SHARE = 0.1
THERMAL_LOSS_SHARE = 0.05
THERMAL_LIMIT_C = {"fdm_printer": 245.0, "sls_printer": 200.0}
DEFAULT_THERMAL_LIMIT_C = 75.0
PEAK_SHARE = 0.2
DEFAULT_PEAK_HOURS = (17, 18, 19, 20)  # UTC hours of day
PEAK_PREMIUM_SHARE = 0.3
MIN_PRICED_HOURS_OF_DAY = 12


@dataclass(frozen=True)
class Opportunity:
    kind: str  # oversizing, thermal_stress, peak_shifting
    title: str
    applies: bool
    summary: str
    yearly_kwh: float
    yearly_savings: Decimal
    currency: str
    figures: dict[str, Any] = field(default_factory=dict)


def _round(value: float, digits: int = 3) -> float:
    return round(float(value), digits)


def _peak_prices(
    site_id: int, start: datetime, end: datetime
) -> tuple[set[int], float, float, str, str]:
    """(peak hours of day, mean peak price, mean off-peak price, currency, basis)."""
    by_hour: dict[int, list[Decimal]] = defaultdict(list)
    currency = conf.currency()
    for hour, price, cur in HourlyRate.objects.filter(
        site_id=site_id, hour__gte=start, hour__lt=end
    ).values_list("hour", "price_per_kwh", "currency"):
        by_hour[hour.astimezone(UTC).hour].append(price)
        currency = cur
    if len(by_hour) >= MIN_PRICED_HOURS_OF_DAY:
        means = {h: float(sum(p) / len(p)) for h, p in by_hour.items()}
        ranked = sorted(means, key=lambda h: means[h], reverse=True)
        peak = set(ranked[: max(1, len(ranked) // 4)])
        off = [means[h] for h in means if h not in peak]
        peak_price = sum(means[h] for h in peak) / len(peak)
        off_price = sum(off) / len(off) if off else peak_price
        return peak, peak_price, off_price, currency, "stored prices"
    base = float(conf.default_grid_price())
    return (
        set(DEFAULT_PEAK_HOURS),
        base * (1 + PEAK_PREMIUM_SHARE),
        base,
        currency,
        f"default peak hours with a {PEAK_PREMIUM_SHARE:.0%} premium (too few stored prices)",
    )


def node_opportunities(
    *,
    node: FabricationNode,
    now: datetime | None = None,
    days: int = WINDOW_DAYS,
    threshold_c: float | None = None,
) -> list[Opportunity]:
    """The three opportunities of `node` with the figures behind each (module docstring)."""
    end = now or timezone.now()
    start = end - timedelta(days=days)
    buckets = point_buckets(node_id=node.pk, start=start, end=end, bucket="hour", signal="power_kw")
    hourly = [(b["bucket"], float(b["avg"])) for b in buckets if b["avg"] is not None]
    span_days = 1.0
    if hourly:
        span_days = max(1.0, (hourly[-1][0] - hourly[0][0]).total_seconds() / 86400 + 1 / 24)
    scale = 365.0 / span_days
    total_kwh = sum(kw for _, kw in hourly)
    running = [kw for _, kw in hourly if kw > RUNNING_KW_SHARE * node.rated_power_kw]
    peak_hours, peak_price, off_price, currency, basis = _peak_prices(site_key(node), start, end)
    mean_price = (
        (peak_price * len(peak_hours) + off_price * (24 - len(peak_hours))) / 24
        if peak_hours
        else off_price
    )
    out = [
        _oversizing(node, running, scale, mean_price, currency),
        _thermal(node, start, end, total_kwh, scale, mean_price, currency, threshold_c),
        _peak(hourly, total_kwh, scale, peak_hours, peak_price, off_price, currency, basis),
    ]
    return out


def _oversizing(
    node: FabricationNode, running: list[float], scale: float, price: float, currency: str
) -> Opportunity:
    rated = node.rated_power_kw
    if not running:
        return Opportunity(
            "oversizing",
            "Oversizing",
            False,
            "No power readings while running in the window.",
            0.0,
            money(0),
            currency,
            {"rated_kw": rated, "running_hours": 0},
        )
    avg = sum(running) / len(running)
    ratio = avg / rated
    right_kw = avg / RIGHT_SIZE_UTILISATION
    saved_kw = max(0.0, OVERHEAD_SHARE * (rated - right_kw))
    yearly_hours = len(running) * scale
    applies = ratio < OVERSIZING_RATIO
    yearly_kwh = saved_kw * yearly_hours if applies else 0.0
    figures = {
        "rated_kw": rated,
        "average_load_kw": _round(avg),
        "load_ratio": _round(ratio),
        "threshold_ratio": OVERSIZING_RATIO,
        "running_hours": len(running),
        "yearly_running_hours": _round(yearly_hours, 1),
        "right_sized_kw": _round(right_kw),
        "overhead_share": OVERHEAD_SHARE,
        "overhead_kw_saved": _round(saved_kw),
        "price_per_kwh": _round(price, 5),
    }
    summary = (
        f"Runs at {ratio:.0%} of its {rated:g} kW on average; a {right_kw:.2f} kW machine would "
        "do the same work with smaller fixed overheads."
        if applies
        else f"Runs at {ratio:.0%} of its rated power: sized for its work."
    )
    return Opportunity(
        "oversizing",
        "Oversizing",
        applies,
        summary,
        _round(yearly_kwh, 1),
        money(yearly_kwh * price),
        currency,
        figures,
    )


def _thermal(
    node: FabricationNode,
    start: datetime,
    end: datetime,
    total_kwh: float,
    scale: float,
    price: float,
    currency: str,
    threshold_c: float | None,
) -> Opportunity:
    limit = (
        threshold_c
        if threshold_c is not None
        else THERMAL_LIMIT_C.get(node.kind, DEFAULT_THERMAL_LIMIT_C)
    )
    counts = point_range(node_id=node.pk, start=start, end=end).aggregate(
        readings=Count("temperature_c"),
        above=Count("temperature_c", filter=Q(temperature_c__gt=limit)),
    )
    readings, above = counts["readings"] or 0, counts["above"] or 0
    share = above / readings if readings else 0.0
    applies = share >= THERMAL_SHARE
    yearly_kwh = share * total_kwh * scale * THERMAL_LOSS_SHARE if applies else 0.0
    figures = {
        "threshold_c": limit,
        "readings": readings,
        "readings_above": above,
        "share_above": _round(share),
        "share_threshold": THERMAL_SHARE,
        "window_kwh": _round(total_kwh),
        "yearly_kwh_drawn": _round(total_kwh * scale, 1),
        "avoidable_share_while_hot": THERMAL_LOSS_SHARE,
        "price_per_kwh": _round(price, 5),
    }
    if not readings:
        summary = "No temperature readings in the window."
    elif applies:
        summary = f"Above {limit:g} °C for {share:.0%} of the time: heat losses and cooling load."
    else:
        summary = f"Above {limit:g} °C for {share:.0%} of the time."
    return Opportunity(
        "thermal_stress",
        "Thermal stress",
        applies,
        summary,
        _round(yearly_kwh, 1),
        money(yearly_kwh * price),
        currency,
        figures,
    )


def _peak(
    hourly: list[tuple[datetime, float]],
    total_kwh: float,
    scale: float,
    peak_hours: set[int],
    peak_price: float,
    off_price: float,
    currency: str,
    basis: str,
) -> Opportunity:
    peak_kwh = sum(kw for at, kw in hourly if at.astimezone(UTC).hour in peak_hours)
    share = peak_kwh / total_kwh if total_kwh > 0 else 0.0
    diff = max(0.0, peak_price - off_price)
    applies = share >= PEAK_SHARE and diff > 0
    yearly = peak_kwh * scale * diff if applies else 0.0
    figures = {
        "peak_hours_utc": sorted(peak_hours),
        "price_basis": basis,
        "window_kwh": _round(total_kwh),
        "peak_kwh": _round(peak_kwh),
        "peak_share": _round(share),
        "share_threshold": PEAK_SHARE,
        "peak_price_per_kwh": _round(peak_price, 5),
        "offpeak_price_per_kwh": _round(off_price, 5),
        "price_difference": _round(diff, 5),
        "yearly_peak_kwh": _round(peak_kwh * scale, 1),
    }
    summary = (
        f"{share:.0%} of its energy is drawn in peak-price hours; flexible jobs could run off-peak."
        if applies
        else f"{share:.0%} of its energy is drawn in peak-price hours."
    )
    return Opportunity(
        "peak_shifting",
        "Peak shifting",
        applies,
        summary,
        0.0,
        money(yearly),
        currency,
        figures,
    )

"""Pure energy arithmetic, no database: kWh from a power curve, carbon, cost, the solar daylight
profile, source selection and the effective price and carbon of a site's mix.

Modelling choices (documented here once, used everywhere):
- kWh: the trapezoid rule over the (time, kW) points, clipped to [start, end] by linear
  interpolation at the edges; nothing is extrapolated beyond the first and last point.
- Telemetry coverage: the share of [start, end] spanned by consecutive points at most
  `MAX_GAP_S` apart. Below `MIN_COVERAGE` the curve is not trusted (see services).
- Solar daylight profile: output factor max(0, sin(pi * (h - 6) / 12)) for the solar hour of day
  h (0 before 06:00 and after 18:00, 1 at noon). The solar hour is UTC + longitude / 15 when the
  longitude is known, else the clock hour of the given datetime. Wind delivers capacity x
  efficiency at any hour (no wind forecast is modelled; import `renewable_kw` for one).
- Source preference: a renewable (solar, wind) whose available power covers the load (the one
  with the most headroom), then a battery above its reserve (with enough energy above reserve
  for the run when its kWh is known), then a fuel cell that covers the load, then the grid, which
  always can.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

import numpy as np

MAX_GAP_S = 300.0
MIN_COVERAGE = 0.8
HOUR = timedelta(hours=1)
MONEY_STEP = Decimal("0.0001")

SOLAR, WIND, BATTERY, FUEL_CELL, GRID = "solar", "wind", "battery", "fuel_cell", "grid"
RENEWABLE = (SOLAR, WIND)


class SourceLike(Protocol):
    kind: str
    capacity_kw: float
    efficiency: float
    status: str
    capacity_kwh: float | None
    soc_pct: float | None
    reserve_pct: float


class NodeLike(Protocol):
    site_id: int | None
    vendor_id: int


def site_key(node: NodeLike) -> int:
    """The site whose prices, cap and site-level sources apply to a node: its operator site,
    else its vendor company (both Organizations)."""
    return node.site_id if node.site_id is not None else node.vendor_id


# --- kWh from a power curve --------------------------------------------------------------------


def _points(
    times: Sequence[datetime], kw: Sequence[float | None]
) -> tuple[np.ndarray, np.ndarray, datetime | None]:
    pairs = sorted((t, float(p)) for t, p in zip(times, kw, strict=True) if p is not None)
    if not pairs:
        return np.array([]), np.array([]), None
    origin = pairs[0][0]
    secs = np.array([(t - origin).total_seconds() for t, _ in pairs])
    values = np.array([p for _, p in pairs])
    return secs, values, origin


def integrate_kwh(
    times: Sequence[datetime],
    kw: Sequence[float | None],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> float:
    """kWh under the power curve (kW at `times`) between `start` and `end` (default: the first
    and last point); points with no reading are skipped."""
    secs, values, origin = _points(times, kw)
    if origin is None or len(secs) < 2:
        return 0.0
    lo = secs[0] if start is None else max(secs[0], (start - origin).total_seconds())
    hi = secs[-1] if end is None else min(secs[-1], (end - origin).total_seconds())
    if hi <= lo:
        return 0.0
    inside = secs[(secs > lo) & (secs < hi)]
    grid = np.concatenate(([lo], inside, [hi]))
    curve = np.interp(grid, secs, values)
    return float(np.trapezoid(curve, grid) / 3600.0)


def telemetry_coverage(
    times: Sequence[datetime], *, start: datetime, end: datetime, max_gap_s: float = MAX_GAP_S
) -> float:
    """Share (0-1) of [start, end] spanned by consecutive points at most `max_gap_s` apart."""
    span = (end - start).total_seconds()
    if span <= 0:
        return 1.0 if times else 0.0
    ordered = sorted(times)
    covered = 0.0
    for a, b in zip(ordered, ordered[1:], strict=False):
        if (b - a).total_seconds() > max_gap_s:
            continue
        lo, hi = max(a, start), min(b, end)
        if hi > lo:
            covered += (hi - lo).total_seconds()
    return min(1.0, covered / span)


def hour_floor(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def clock_hours(start: datetime, end: datetime) -> list[tuple[datetime, datetime, datetime]]:
    """(clock hour, slice start, slice end) for each clock hour [start, end) touches."""
    out = []
    hour = hour_floor(start)
    while hour < end:
        lo, hi = max(start, hour), min(end, hour + HOUR)
        if hi > lo:
            out.append((hour, lo, hi))
        hour += HOUR
    return out


def kwh_by_hour(
    times: Sequence[datetime], kw: Sequence[float | None], *, start: datetime, end: datetime
) -> dict[datetime, float]:
    """The curve's kWh in each clock hour of [start, end)."""
    return {
        hour: integrate_kwh(times, kw, start=lo, end=hi) for hour, lo, hi in clock_hours(start, end)
    }


def spread_by_hour(kwh: float, *, start: datetime, end: datetime) -> dict[datetime, float]:
    """`kwh` spread evenly over the clock hours of [start, end) (a constant load)."""
    span = (end - start).total_seconds()
    if span <= 0:
        return {hour_floor(start): kwh}
    return {
        hour: kwh * (hi - lo).total_seconds() / span for hour, lo, hi in clock_hours(start, end)
    }


# --- Carbon and cost ---------------------------------------------------------------------------


def co2e_kg(kwh: float, factor: float) -> float:
    """kg CO2e of `kwh` drawn from a source emitting `factor` kg CO2e per kWh."""
    return kwh * factor


def carbon_by_source(kwh_by_kind: dict[str, float], factors: dict[str, float]) -> float:
    """kg CO2e of a mix (kWh per source kind), each kind at its own factor."""
    return sum(co2e_kg(kwh, factors[kind]) for kind, kwh in kwh_by_kind.items())


def money(value: Decimal | float | int) -> Decimal:
    return Decimal(str(value)).quantize(MONEY_STEP, rounding=ROUND_HALF_UP)


def energy_cost(kwh: float, price_per_kwh: Decimal) -> Decimal:
    return money(Decimal(str(kwh)) * price_per_kwh)


# --- Solar and source selection ----------------------------------------------------------------


def daylight(at: datetime, *, longitude: float | None = None) -> float:
    """Solar output as a share of capacity at `at` (the profile in the module docstring)."""
    if longitude is not None:
        utc = at.utctimetuple()
        h = (utc.tm_hour + utc.tm_min / 60 + longitude / 15.0) % 24
    else:
        h = at.hour + at.minute / 60
    if h <= 6 or h >= 18:
        return 0.0
    return math.sin(math.pi * (h - 6) / 12)


def available_kw(source: SourceLike, at: datetime, *, longitude: float | None = None) -> float:
    """What an online source can deliver at `at` (batteries and fuel cells: their rating)."""
    if source.status != "online":
        return 0.0
    kw = source.capacity_kw * source.efficiency
    if source.kind == SOLAR:
        kw *= daylight(at, longitude=longitude)
    return kw


def battery_kwh_above_reserve(source: SourceLike) -> float:
    if source.capacity_kwh is None or source.soc_pct is None:
        return 0.0
    return max(0.0, (source.soc_pct - source.reserve_pct) / 100) * source.capacity_kwh


@dataclass(frozen=True)
class SourceChoice:
    kind: str
    reason: str
    source: Any | None = None  # the chosen EnergySource (None: the grid, none defined)


def source_pick(
    load_kw: float,
    sources: Iterable[SourceLike],
    at: datetime,
    *,
    kwh: float | None = None,
    longitude: float | None = None,
) -> SourceChoice:
    """The source a load of `load_kw` (drawing `kwh` in all, when known) takes at `at`, and why
    (preference order in the module docstring)."""
    online = [s for s in sources if s.status == "online"]
    skipped: list[str] = []

    renewables = [(available_kw(s, at, longitude=longitude), s) for s in online]
    renewables = [(kw, s) for kw, s in renewables if s.kind in RENEWABLE]
    fitting = [(kw, s) for kw, s in renewables if kw >= load_kw]
    if fitting:
        kw, best = max(fitting, key=lambda pair: pair[0])
        detail = f"{best.capacity_kw:g} kW x {best.efficiency:g} efficiency"
        if best.kind == SOLAR:
            detail += f" x {daylight(at, longitude=longitude):.2f} daylight"
        return SourceChoice(
            best.kind,
            f"{best.kind.capitalize()}: {load_kw:.2f} kW load within {kw:.2f} kW available "
            f"({detail}).",
            best,
        )
    for kw, s in renewables:
        skipped.append(f"{s.kind} {kw:.2f} kW available < {load_kw:.2f} kW")

    for s in (s for s in online if s.kind == BATTERY):
        soc, reserve = s.soc_pct, s.reserve_pct
        if soc is None or soc <= reserve:
            skipped.append(f"battery at {soc if soc is not None else '?'}% (reserve {reserve:g}%)")
            continue
        if s.capacity_kw * s.efficiency < load_kw:
            skipped.append(f"battery {s.capacity_kw * s.efficiency:.2f} kW < {load_kw:.2f} kW")
            continue
        spare = battery_kwh_above_reserve(s) * s.efficiency
        if kwh is not None and s.capacity_kwh is not None and spare < kwh:
            skipped.append(f"battery {spare:.2f} kWh above reserve < {kwh:.2f} kWh")
            continue
        return SourceChoice(
            BATTERY,
            f"Battery at {soc:g}% above its {reserve:g}% reserve "
            f"({spare:.2f} kWh spare); renewables short"
            + (f" ({'; '.join(skipped)})" if skipped else "")
            + ".",
            s,
        )

    for s in (s for s in online if s.kind == FUEL_CELL):
        kw = s.capacity_kw * s.efficiency
        if kw >= load_kw:
            return SourceChoice(
                FUEL_CELL,
                f"Fuel cell: {load_kw:.2f} kW load within {kw:.2f} kW"
                + (f"; {'; '.join(skipped)}" if skipped else "")
                + ".",
                s,
            )
        skipped.append(f"fuel cell {kw:.2f} kW < {load_kw:.2f} kW")

    grid = next((s for s in online if s.kind == GRID), None)
    why = "; ".join(skipped) if skipped else "no other source online"
    return SourceChoice(GRID, f"Grid: {why}.", grid)


def source_select(
    load_kw: float, sources: Iterable[SourceLike], at: datetime, **kwargs: Any
) -> tuple[str, str]:
    """(source kind, reason) for a load of `load_kw` at `at`; see `source_pick`."""
    choice = source_pick(load_kw, sources, at, **kwargs)
    return choice.kind, choice.reason


# --- A site's mix --------------------------------------------------------------------------------


def renewable_share(renewable_kw: float, reference_kw: float) -> float:
    """r = min(1, renewable kW / the site's reference load); 0 without renewables."""
    if renewable_kw <= 0:
        return 0.0
    if reference_kw <= 0:
        return 1.0
    return min(1.0, renewable_kw / reference_kw)


def blend(grid_value: float, renewable_value: float, share: float) -> float:
    """(1 - r) * grid + r * renewable."""
    return (1 - share) * grid_value + share * renewable_value

"""The pure arithmetic: kWh under known power curves, carbon by source, cost, the daylight
profile and the source preference order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apps.energy import conf
from apps.energy.calc import (
    carbon_by_source,
    daylight,
    energy_cost,
    integrate_kwh,
    kwh_by_hour,
    source_pick,
    source_select,
    spread_by_hour,
    telemetry_coverage,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def minutes(*values: float) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in values]


def test_a_ramp_from_0_to_2_kw_over_an_hour_is_1_kwh():
    # the area of a triangle: 1/2 x 1 h x 2 kW
    assert integrate_kwh(minutes(0, 60), [0.0, 2.0]) == pytest.approx(1.0)
    # the same ramp sampled every 6 minutes: the trapezoid rule is exact on a line
    times = minutes(*range(0, 61, 6))
    assert integrate_kwh(times, [2.0 * m / 60 for m in range(0, 61, 6)]) == pytest.approx(1.0)


def test_a_step_from_1_to_3_kw_at_half_an_hour():
    # 1 kW for 30 min, 3 kW for 30 min (the step within one second): 0.5 + 1.5 = 2 kWh,
    # less half a second's worth of the 2 kW jump
    times = minutes(0, 30, 30 + 1 / 60, 60)
    kwh = integrate_kwh(times, [1.0, 1.0, 3.0, 3.0])
    assert kwh == pytest.approx(2.0 - 2.0 * 0.5 / 3600)


def test_the_curve_is_clipped_to_the_run_by_interpolation():
    ramp = minutes(0, 60)
    # from 15 to 45 minutes the ramp goes 0.5 -> 1.5 kW: mean 1 kW for half an hour
    kwh = integrate_kwh(
        ramp, [0.0, 2.0], start=T0 + timedelta(minutes=15), end=T0 + timedelta(minutes=45)
    )
    assert kwh == pytest.approx(0.5)
    # nothing is extrapolated beyond the points
    before = integrate_kwh(ramp, [0.0, 2.0], start=T0 - timedelta(hours=1), end=T0)
    assert before == 0.0
    # a missing reading is skipped, not read as 0
    assert integrate_kwh(minutes(0, 30, 60), [1.0, None, 1.0]) == pytest.approx(1.0)


def test_kwh_split_by_clock_hour_adds_up():
    times = minutes(*range(0, 121, 10))  # 09:00 - 11:00 at a constant 3 kW
    by_hour = kwh_by_hour(
        times, [3.0] * len(times), start=T0 + timedelta(minutes=30), end=T0 + timedelta(minutes=120)
    )
    assert by_hour == {
        T0: pytest.approx(1.5),
        T0 + timedelta(hours=1): pytest.approx(3.0),
    }
    spread = spread_by_hour(4.0, start=T0 + timedelta(minutes=30), end=T0 + timedelta(minutes=90))
    assert spread == {T0: pytest.approx(2.0), T0 + timedelta(hours=1): pytest.approx(2.0)}


def test_coverage_counts_only_gaps_up_to_five_minutes():
    start, end = T0, T0 + timedelta(minutes=60)
    every_minute = [T0 + timedelta(minutes=m) for m in range(61)]
    assert telemetry_coverage(every_minute, start=start, end=end) == pytest.approx(1.0)
    # a 20-minute hole in the middle
    holed = [t for t in every_minute if not 20 < (t - T0).total_seconds() / 60 < 40]
    assert telemetry_coverage(holed, start=start, end=end) == pytest.approx(40 / 60)
    assert telemetry_coverage([], start=start, end=end) == 0.0


def test_carbon_by_source_uses_each_kinds_factor():
    factors = conf.DEFAULT_EMISSION_FACTORS
    assert factors == {"solar": 0.0, "wind": 0.0, "battery": 0.1, "fuel_cell": 0.2, "grid": 0.475}
    mix = {"solar": 10.0, "wind": 5.0, "battery": 2.0, "fuel_cell": 1.0, "grid": 4.0}
    # 0 + 0 + 0.2 + 0.2 + 1.9
    assert carbon_by_source(mix, factors) == pytest.approx(2.3)
    assert carbon_by_source({"grid": 1.2}, factors) == pytest.approx(0.57)


def test_cost_is_decimal_money():
    assert energy_cost(1.2, Decimal("0.25")) == Decimal("0.3000")
    assert energy_cost(0.00333, Decimal("0.15")) == Decimal("0.0005")


def test_daylight_profile():
    assert daylight(NOON) == pytest.approx(1.0)
    assert daylight(MIDNIGHT) == 0.0
    assert daylight(T0) == pytest.approx(0.7071, abs=1e-4)  # 09:00: sin(pi / 4)
    # at 90 degrees east the sun is at its highest at 06:00 UTC
    assert daylight(NOON - timedelta(hours=6), longitude=90.0) == pytest.approx(1.0)


@dataclass
class Src:
    kind: str
    capacity_kw: float
    efficiency: float = 1.0
    status: str = "online"
    capacity_kwh: float | None = None
    soc_pct: float | None = None
    reserve_pct: float = 20.0


def test_renewable_first_when_it_covers_the_load():
    sources = [Src("grid", 100), Src("fuel_cell", 5), Src("solar", 4, 0.9)]
    kind, reason = source_select(2.0, sources, NOON)
    assert kind == "solar"
    assert "3.60 kW available" in reason
    # solar at night delivers nothing: wind takes it when it covers the load
    assert source_select(2.0, [*sources, Src("wind", 3)], MIDNIGHT)[0] == "wind"


def test_then_a_battery_above_its_reserve_then_a_fuel_cell_then_the_grid():
    solar = Src("solar", 4)
    battery = Src("battery", 5, capacity_kwh=10, soc_pct=60, reserve_pct=20)
    fuel = Src("fuel_cell", 3)
    grid = Src("grid", 100)
    # at night the solar gives nothing: the battery, 4 kWh above its reserve
    kind, reason = source_select(2.0, [grid, fuel, battery, solar], MIDNIGHT, kwh=3.0)
    assert kind == "battery" and "reserve" in reason
    # a run needing more than the battery holds above its reserve: the fuel cell
    assert source_select(2.0, [grid, fuel, battery, solar], MIDNIGHT, kwh=5.0)[0] == "fuel_cell"
    # a battery down at its reserve is not used
    low = Src("battery", 5, capacity_kwh=10, soc_pct=20, reserve_pct=20)
    assert source_select(2.0, [grid, fuel, low], MIDNIGHT)[0] == "fuel_cell"
    # a load too big for the fuel cell: the grid, saying why
    choice = source_pick(4.0, [grid, fuel, low, solar], MIDNIGHT)
    assert choice.kind == "grid" and choice.source is grid
    assert "fuel cell 3.00 kW < 4.00 kW" in choice.reason
    assert "battery at 20" in choice.reason


def test_offline_sources_are_skipped_and_the_grid_needs_no_row():
    sources = [
        Src("solar", 10, status="offline"),
        Src("battery", 5, capacity_kwh=10, soc_pct=90, status="maintenance"),
    ]
    choice = source_pick(1.0, sources, NOON)
    assert choice.kind == "grid" and choice.source is None
    assert choice.reason == "Grid: no other source online."

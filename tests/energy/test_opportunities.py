"""Opportunities from a node's telemetry history: oversizing, thermal stress, peak shifting,
each with its yearly savings and the figures behind it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.energy.calc import hour_floor
from apps.energy.opportunities import node_opportunities
from apps.telemetry.services import telemetry_ingest
from tests.energy.factories import HourlyRateFactory
from tests.fixtures.fleet import Fleet

pytestmark = pytest.mark.django_db


def test_a_lightly_loaded_hot_printer_running_in_peak_hours(fleet: Fleet, printer, ingest):
    # given six hours of a 0.35 kW printer drawing 0.05 kW, hot (250 C) the first three
    now = timezone.now()
    start = hour_floor(now) - timedelta(hours=6)
    times = [start + timedelta(minutes=5 * i) for i in range(72)]
    ingest(printer, [(t, 0.05) for t in times])
    temperatures = [
        {"node": printer.pk, "time": (t + timedelta(seconds=1)).isoformat(), "temperature_c": c}
        for t, c in zip(times, [250.0] * 36 + [200.0] * 36, strict=True)
    ]
    assert telemetry_ingest(points=temperatures, node_id=printer.pk).accepted == 72
    # and yesterday's prices: those six hours of day cost 0.50, the other eighteen 0.10
    busy = {(start + timedelta(hours=h)).hour for h in range(6)}
    yesterday = hour_floor(now) - timedelta(days=1)
    for h in range(24):
        hour = yesterday - timedelta(hours=h)
        price = "0.50" if hour.hour in busy else "0.10"
        HourlyRateFactory.create(site=fleet.site, hour=hour, price_per_kwh=Decimal(price))

    oversizing, thermal, peak = node_opportunities(node=printer, now=now)

    # by hand: 6 running hours of 0.05 kW in a window shorter than a day -> x 365 a year;
    # mean price (6 x 0.50 + 18 x 0.10) / 24 = 0.20
    assert oversizing.applies
    assert oversizing.figures["load_ratio"] == pytest.approx(0.05 / 0.35, abs=1e-3)
    assert oversizing.figures["running_hours"] == 6
    # right-sized 0.05 / 0.6 kW; 10 % of (0.35 - 0.0833) kW saved for 6 x 365 h
    saved_kwh = 0.1 * (0.35 - 0.05 / 0.6) * 6 * 365
    assert oversizing.yearly_kwh == pytest.approx(saved_kwh, abs=0.1)
    assert oversizing.yearly_savings == pytest.approx(
        Decimal(str(saved_kwh * 0.2)), abs=Decimal("0.01")
    )

    # above the FDM warning temperature half the time: 5 % of the energy drawn while hot
    assert thermal.applies and thermal.figures["threshold_c"] == 245.0
    assert thermal.figures["share_above"] == pytest.approx(0.5)
    hot_kwh = 0.5 * (6 * 0.05) * 365 * 0.05
    assert thermal.yearly_kwh == pytest.approx(hot_kwh, abs=0.1)
    assert thermal.yearly_savings == pytest.approx(Decimal(str(hot_kwh * 0.2)), abs=Decimal("0.01"))

    # all of it in the six dearest hours of day: 0.3 kWh x 365 x (0.50 - 0.10)
    assert peak.applies and peak.figures["price_basis"] == "stored prices"
    assert set(peak.figures["peak_hours_utc"]) == busy
    assert peak.figures["peak_share"] == pytest.approx(1.0)
    assert peak.figures["price_difference"] == pytest.approx(0.4)
    assert peak.yearly_savings == pytest.approx(Decimal("43.80"), abs=Decimal("0.01"))
    assert peak.yearly_kwh == 0.0


def test_a_quiet_node_has_nothing_to_save(fleet: Fleet, printer):
    found = node_opportunities(node=printer)
    assert [o.kind for o in found] == ["oversizing", "thermal_stress", "peak_shifting"]
    assert not any(o.applies for o in found)
    assert all(o.yearly_savings == 0 for o in found)
    assert found[2].figures["price_basis"].startswith("default peak hours")

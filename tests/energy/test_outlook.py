"""The outlook the jobs scheduler consults: hourly price and carbon per site from stored rates,
the forecast from history where none is stored, the default beyond; the renewable share; caps;
each node's site and heat-up time; a fixed number of queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apps.energy import conf
from apps.energy.models import HourlyRate
from apps.energy.outlook import energy_outlook_for, site_outlook
from apps.energy.selectors import emission_factors
from apps.jobs.providers import energy_outlook
from tests.energy.factories import EnergySourceFactory, HourlyRateFactory, SitePowerCapFactory
from tests.fixtures.fleet import Fleet

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 10, 20, tzinfo=UTC)  # hour 0 is 10:20-11:20, its midpoint at 10:50


def rate(site, hour: datetime, price: str, **fields) -> HourlyRate:
    return HourlyRateFactory.create(site=site, hour=hour, price_per_kwh=Decimal(price), **fields)


def test_stored_rate_then_forecast_from_history_then_default(fleet: Fleet, printer, rival):
    site = fleet.site
    rate(site, datetime(2026, 3, 2, 10, tzinfo=UTC), "0.40")
    # 11:00 on two earlier days: the forecast for 11:00 today is their mean
    rate(site, datetime(2026, 3, 1, 11, tzinfo=UTC), "0.20")
    rate(site, datetime(2026, 2, 27, 11, tzinfo=UTC), "0.30")
    # too old for the 14-day history, and a forecast row: neither counts
    rate(site, datetime(2026, 2, 10, 11, tzinfo=UTC), "9.00")
    rate(site, datetime(2026, 3, 1, 12, tzinfo=UTC), "5.00", source="forecast")
    SitePowerCapFactory.create(site=site, max_kw=2.5)

    outlook = energy_outlook([printer.pk, rival.pk], NOW, 3)

    assert outlook.node_site == {
        printer.pk: site.pk,
        rival.pk: fleet.rival.organizations.get().pk,
    }
    assert outlook.peak_h == {printer.pk: 0.1, rival.pk: 0.05}  # FDM printer, CNC mill
    at_site = outlook.sites[site.pk]
    default = float(conf.default_grid_price())
    grid = 0.475  # no renewables at the site: all grid
    assert at_site.price == pytest.approx((0.40, 0.25, default))
    assert at_site.carbon == pytest.approx((grid, grid, grid))
    assert at_site.cap_kw == 2.5
    rival_site = outlook.sites[outlook.node_site[rival.pk]]
    assert rival_site.cap_kw is None and rival_site.price == pytest.approx((default,) * 3)

    detail = site_outlook(site_id=site.pk, now=NOW, hours=3)
    assert [h.price_from for h in detail.hours] == ["stored", "forecast", "default"]
    assert detail.hours[0].start == NOW and detail.hours[1].start == NOW + timedelta(hours=1)


def test_renewables_lower_the_price_and_carbon_of_the_mix(fleet: Fleet, printer):
    site = fleet.site
    # the site's nodes: the printer, 0.35 kW rated -> reference load 0.35 x 0.5 = 0.175 kW
    SitePowerCapFactory.create(site=site, renewable_price_per_kwh=Decimal("0.05"))
    # 10:00 forecast says 0.0875 kW renewable: half the reference load
    rate(site, datetime(2026, 3, 2, 10, tzinfo=UTC), "0.40", renewable_kw=0.0875)
    # 11:00 has no rate: the site's 1 kW wind turbine at 80 % covers it all
    EnergySourceFactory.create(site=site, kind="wind", capacity_kw=1, efficiency=0.8)
    EnergySourceFactory.create(site=site, kind="solar", capacity_kw=5, status="offline")

    site_hours = site_outlook(site_id=site.pk, now=NOW, hours=2)

    first, second = site_hours.hours
    assert site_hours.reference_kw == pytest.approx(0.175)
    assert first.renewable_from == "rate" and first.renewable_share == pytest.approx(0.5)
    assert first.price == pytest.approx(0.5 * 0.40 + 0.5 * 0.05)
    assert first.carbon == pytest.approx(0.5 * 0.475 + 0.5 * 0.0)
    assert second.renewable_from == "sources" and second.renewable_kw == pytest.approx(0.8)
    assert second.renewable_share == 1.0
    assert second.price == pytest.approx(0.05) and second.carbon == pytest.approx(0.0)


def test_solar_follows_the_daylight_profile(fleet: Fleet, printer):
    site = fleet.site
    EnergySourceFactory.create(site=site, kind="solar", capacity_kw=0.1)
    night = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    hours = site_outlook(site_id=site.pk, now=night, hours=24).hours
    by_clock = {h.clock_hour.hour: h for h in hours}
    assert by_clock[1].renewable_kw == 0.0 and by_clock[1].renewable_from == "none"
    # the printer's longitude is unset: solar noon is 12:00 UTC (midpoint 12:30 here)
    assert by_clock[12].renewable_kw == pytest.approx(0.1 * 0.9914, abs=1e-3)
    assert by_clock[12].carbon < by_clock[1].carbon


def test_the_provider_costs_a_fixed_number_of_queries(
    fleet: Fleet, printer, rival, django_assert_num_queries
):
    for day in range(10):
        rate(fleet.site, datetime(2026, 2, 20 + day // 5, day % 24, tzinfo=UTC), "0.2")
    emission_factors()  # cached, as they are between scheduler runs
    # the nodes with their sites' other nodes, the rates, the renewable sources, the caps
    with django_assert_num_queries(4):
        outlook = energy_outlook_for([printer.pk, rival.pk], NOW, 48)
    assert all(len(s.price) == 48 for s in outlook.sites.values())


def test_no_nodes_no_outlook(db):
    outlook = energy_outlook_for([], NOW, 24)
    assert outlook.sites == {} and outlook.node_site == {}

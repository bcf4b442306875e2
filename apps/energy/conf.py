"""Energy settings (read from django settings when the project sets them) and the modelling
defaults the outlook, consumption and opportunities share."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

# kg CO2e per kWh; the seed of EmissionFactor (migration 0002) and the fallback when a kind has
# no row (a transactional test empties the table).
DEFAULT_EMISSION_FACTORS: dict[str, float] = {
    "solar": 0.0,
    "wind": 0.0,
    "battery": 0.1,
    "fuel_cell": 0.2,
    "grid": 0.475,
}

# The share of their rated power a site's machines draw on average: the site's reference load
# (sum of rated power x this) is what renewable output is compared with to get the renewable
# share of an hour.
REFERENCE_UTILISATION = 0.5

# Hours at rated power a machine needs to heat up before it runs at its working load; the
# scheduler staggers starts so these peaks do not coincide under a site's cap.
PEAK_HOURS_BY_KIND: dict[str, float] = {
    "fdm_printer": 0.1,
    "sla_printer": 0.05,
    "sls_printer": 0.5,
    "cnc_mill": 0.05,
    "cnc_lathe": 0.05,
    "laser_cutter": 0.02,
    "robot_cell": 0.02,
    "inspection": 0.0,
}
DEFAULT_PEAK_HOURS = 0.05

# The built-in price forecast: the mean stored price at that hour of day over this many days.
FORECAST_HISTORY_DAYS = 14


def default_grid_price() -> Decimal:
    """Money per kWh from the grid when a site has no rate for the hour and no history."""
    value = getattr(
        settings, "ENERGY_DEFAULT_GRID_PRICE_PER_KWH", settings.JOBS_ENERGY_PRICE_PER_KWH
    )
    return Decimal(str(value))


def default_renewable_price() -> Decimal:
    """Money per kWh of a site's own generation when its settings name none."""
    return Decimal(str(getattr(settings, "ENERGY_DEFAULT_RENEWABLE_PRICE_PER_KWH", 0)))


def currency() -> str:
    return str(settings.JOBS_CURRENCY)


# Metered energy (everything a node drew, idle or running, from its power_kw telemetry): two
# readings further apart than this are a node that was off or silent, and the gap counts nothing
# (the gap a part's measurement tolerates, apps.energy.calc.MAX_GAP_S).
METERED_MAX_GAP_S = 300.0
# A node's newest power reading counts as its draw now while it is at most this old (what the
# Live page shows); a site is over its cap when the nodes standing there draw more in sum.
DRAW_FRESH_SECONDS = 120
# A closed day's metered kWh is kept this long in the cache: a page reads raw telemetry only for
# today and the days it has not seen within this time. Points that arrive later for a closed day
# (a gateway's store-and-forward after an outage, an imported history) count once it expires.
METERED_DAY_CACHE_S = 6 * 3600

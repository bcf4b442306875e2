from __future__ import annotations

from django.apps import AppConfig


class EnergyConfig(AppConfig):
    name = "apps.energy"
    label = "energy"
    verbose_name = "Energy"

    def ready(self) -> None:
        """Hooks into jobs and telemetry (receivers.py): consumption on part finish, the
        scheduler's energy outlook (prices, carbon, power caps), the job page's energy panel."""
        from apps.core.labels import labels_register
        from apps.energy import receivers

        receivers.connect()
        # the figures behind a node's savings opportunities (opportunities.py); the rest are
        # spelled out from their names ("yearly_peak_kwh" -> "Yearly peak (kWh)")
        labels_register(
            "energy_figure",
            {
                "rated_kw": "Rated power (kW)",
                "average_load_kw": "Average load (kW)",
                "right_sized_kw": "Right-sized power (kW)",
                "overhead_kw_saved": "Overhead saved (kW)",
                "load_ratio": "Load / rated power",
                "threshold_c": "Hot above (°C)",
                "avoidable_share_while_hot": "Avoidable share while hot",
                "peak_hours_utc": "Peak hours (UTC)",
                "price_basis": "Prices from",
                "yearly_kwh_drawn": "Drawn a year (kWh)",
                "readings_above": "Readings above the threshold",
            },
        )

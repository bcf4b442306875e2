from __future__ import annotations

from django.apps import AppConfig


class EnergyConfig(AppConfig):
    name = "apps.energy"
    label = "energy"
    verbose_name = "Energy"

    def ready(self) -> None:
        """Hooks into jobs and telemetry (receivers.py): consumption on part finish, the
        scheduler's energy outlook (prices, carbon, power caps), the job page's energy panel."""
        from apps.energy import receivers

        receivers.connect()

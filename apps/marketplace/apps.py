from __future__ import annotations

from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "apps.marketplace"
    label = "marketplace"
    verbose_name = "Marketplace"

    def ready(self) -> None:
        """Hooks into jobs (receivers.py): the placement of parts run on bought capacity and
        the job page's panel of what the marketplace supplied."""
        from apps.marketplace import receivers

        receivers.connect()

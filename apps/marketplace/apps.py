from __future__ import annotations

from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "apps.marketplace"
    label = "marketplace"
    verbose_name = "Marketplace"

    def ready(self) -> None:
        """Hooks into jobs (receivers.py): the placement of parts run on bought capacity and
        the job page's panel of what the marketplace supplied."""
        from apps.core.labels import labels_register
        from apps.marketplace import receivers

        receivers.connect()
        # the usual playbook step settings; others are spelled out from their names
        labels_register(
            "playbook_setting",
            {
                "nozzle_c": "Nozzle temperature",
                "bed_c": "Bed temperature",
                "dryer_c": "Dryer temperature",
                "chamber_c": "Chamber temperature",
                "first_layer_mm_s": "First-layer speed",
                "speed_mm_s": "Speed",
                "layer_mm": "Layer height",
                "tolerance_mm": "Tolerance",
                "infill_pct": "Infill",
                "feed_mm_min": "Feed",
                "spindle_rpm": "Spindle speed",
            },
        )

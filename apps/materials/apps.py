from __future__ import annotations

from django.apps import AppConfig


class MaterialsConfig(AppConfig):
    name = "apps.materials"
    label = "materials"
    verbose_name = "Materials"

    def ready(self) -> None:
        """Hooks into jobs and telemetry (receivers.py): usage on part finish, stock from
        `material_remaining`, stock availability for the scheduler."""
        from apps.materials import receivers

        receivers.connect()

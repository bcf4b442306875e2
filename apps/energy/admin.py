from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.energy.models import Consumption, EmissionFactor, EnergySource, HourlyRate, SitePowerCap
from apps.energy.services import emission_factor_update


@admin.register(EmissionFactor)
class EmissionFactorAdmin(admin.ModelAdmin[EmissionFactor]):
    list_display = ["kind", "kg_co2e_per_kwh", "note", "updated_at"]
    fields = ["kind", "kg_co2e_per_kwh", "note"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # through the service, so the scheduler's cached factors are refreshed
        emission_factor_update(
            by=None, kind=obj.kind, kg_co2e_per_kwh=obj.kg_co2e_per_kwh, note=obj.note
        )


@admin.register(EnergySource)
class EnergySourceAdmin(admin.ModelAdmin[EnergySource]):
    list_display = ["id", "name", "kind", "site", "node", "capacity_kw", "status", "soc_pct"]
    list_filter = ["kind", "status"]
    raw_id_fields = ["site", "node"]


@admin.register(SitePowerCap)
class SitePowerCapAdmin(admin.ModelAdmin[SitePowerCap]):
    list_display = ["site", "max_kw", "renewable_price_per_kwh", "currency"]
    raw_id_fields = ["site"]


@admin.register(HourlyRate)
class HourlyRateAdmin(admin.ModelAdmin[HourlyRate]):
    list_display = ["site", "hour", "price_per_kwh", "currency", "renewable_kw", "source"]
    list_filter = ["source"]
    date_hierarchy = "hour"
    raw_id_fields = ["site"]


@admin.register(Consumption)
class ConsumptionAdmin(admin.ModelAdmin[Consumption]):
    list_display = ["id", "part", "node", "kwh", "method", "source_kind", "cost", "co2e_kg"]
    list_filter = ["method", "source_kind"]
    date_hierarchy = "finished_at"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # recorded by the services only

from __future__ import annotations

from datetime import UTC
from typing import Any

from django import forms
from django.utils import timezone

from apps.core.model_fields import model_form_field
from apps.energy.models import EnergySource, HourlyRate, SitePowerCap, SourceKind


def _source_field(name: str, **kwargs: Any) -> forms.Field:
    return model_form_field(EnergySource, name, **kwargs)


class SourceForm(forms.Form):
    """A source's fields as the model states them (types, choices and limits), with the page's
    labels and help; the same fields as the API's and the services' (SOURCE_FIELDS)."""

    name = _source_field("name")
    kind = _source_field("kind", initial=SourceKind.SOLAR)
    capacity_kw = _source_field("capacity_kw", label="Capacity (kW)")
    efficiency = _source_field("efficiency", help_text="0 to 1")
    status = _source_field("status")
    capacity_kwh = _source_field(
        "capacity_kwh", label="Battery capacity (kWh)", help_text="Batteries only"
    )
    soc_pct = _source_field("soc_pct", help_text="Batteries only")
    reserve_pct = _source_field(
        "reserve_pct", label="Reserve (%)", help_text="Batteries keep this charge back"
    )

    @classmethod
    def for_source(cls, source: EnergySource, data: Any = None) -> SourceForm:
        initial = {name: getattr(source, name) for name in cls.base_fields}
        return cls(data, initial=initial)


class CapForm(forms.Form):
    max_kw = model_form_field(
        SitePowerCap,
        "max_kw",
        label="Power cap (kW)",
        help_text="The most the site's machines may draw together; empty for no cap.",
    )
    renewable_price_per_kwh = model_form_field(
        SitePowerCap,
        "renewable_price_per_kwh",
        label="Own generation price per kWh",
        help_text="What a kWh of the site's solar, wind, battery or fuel cell costs; empty: 0.",
    )
    currency = forms.CharField(min_length=3, max_length=3, required=False)


class RateForm(forms.Form):
    hour = forms.DateTimeField(
        label="Hour (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 3600}),
        help_text="The start of the hour, in UTC.",
    )
    price = forms.DecimalField(
        label="Grid price per kWh", max_digits=10, decimal_places=5, min_value=0
    )
    renewable_kw = forms.FloatField(label="Renewable forecast (kW)", min_value=0, required=False)
    currency = forms.CharField(min_length=3, max_length=3, required=False)
    source = forms.ChoiceField(
        choices=[
            (HourlyRate.Source.ENTERED, "Entered price"),
            (HourlyRate.Source.FORECAST, "Forecast"),
        ],
        initial=HourlyRate.Source.ENTERED,
    )

    def clean_hour(self) -> Any:
        hour = self.cleaned_data["hour"]
        if timezone.is_naive(hour):
            hour = timezone.make_aware(hour, UTC)
        return hour.astimezone(UTC)


class RatesImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="Columns: hour, price, optional renewable_kw and currency (site optional "
        "here: this site).",
    )

"""Forms of the seller's revenue and sales pages and the admins' ledger. Field names match the
services' arguments, so a service's ValidationError lands on the field it names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.utils.http import urlencode

from apps.marketplace.selectors.revenue_export import (
    DEFAULT_DAYS,
    PERIOD_CHOICES,
    revenue_default_range,
    revenue_range_check,
)
from apps.users.models import Organization

DATE = forms.DateInput(attrs={"type": "date"})
MONEY = forms.NumberInput(attrs={"step": "0.01", "min": "0.01"})


@dataclass(frozen=True)
class RevenueQuery:
    seller_id: int | None
    start: date
    end: date
    period: str
    currency: str

    def params(self, **changes: str) -> str:
        """The query string of this view (with `changes`), for links, tabs and the CSV."""
        values = {
            "seller": str(self.seller_id or ""),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "period": self.period,
            "currency": self.currency,
            **changes,
        }
        return urlencode({k: v for k, v in values.items() if v})


class RevenueFilterForm(forms.Form):
    """The revenue page's query (?seller=&start=&end=&period=&currency=). Whatever is missing or
    wrong falls back to its default (the last 90 days by week); `errors` says what was wrong."""

    seller = forms.IntegerField(required=False, min_value=1)
    start = forms.DateField(required=False, widget=DATE)
    end = forms.DateField(required=False, widget=DATE)
    period = forms.ChoiceField(required=False, choices=PERIOD_CHOICES)
    currency = forms.CharField(required=False, max_length=3)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if "start" in self.errors or "end" in self.errors:
            return data
        if isinstance(start, date) or isinstance(end, date):
            end = end if isinstance(end, date) else revenue_default_range()[1]
            start = start if isinstance(start, date) else end - timedelta(days=DEFAULT_DAYS - 1)
            try:
                revenue_range_check(start=start, end=end)
            except ValidationError as exc:
                for field, messages in exc.message_dict.items():
                    self.add_error(field if field in self.fields else None, messages)
        return data

    def query(self) -> RevenueQuery:
        """The query to show: the valid parts of what was asked, defaults for the rest (a date
        range with any error in it falls back to the default range as a whole)."""
        errors = self.errors  # cleans a bound form
        data = self.cleaned_data if self.is_bound else {}
        start, end = revenue_default_range()
        if "start" not in errors and "end" not in errors:
            if data.get("end"):
                end = data["end"]
                start = end - timedelta(days=DEFAULT_DAYS - 1)
            if data.get("start"):
                start = data["start"]
        return RevenueQuery(
            seller_id=data.get("seller"),
            start=start,
            end=end,
            period=data.get("period") or "week",
            currency=(data.get("currency") or "").upper(),
        )

    def error_lines(self) -> list[str]:
        labels = {"start": "Start date", "end": "End date", "seller": "Seller", "period": "Period"}
        return [
            f"{labels.get(field, field.title())}: {' '.join(str(m) for m in messages)}"
            if field != "__all__"
            else " ".join(str(m) for m in messages)
            for field, messages in self.errors.items()
        ]


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        required=False,
        min_value=Decimal("0.01"),
        max_digits=14,
        decimal_places=2,
        widget=MONEY,
        help_text="Empty: all that is left.",
    )
    reason = forms.CharField(max_length=300, help_text="The buyer sees it.")


class PayoutForm(forms.Form):
    organization = forms.ModelChoiceField(queryset=Organization.objects.all())
    currency = forms.CharField(min_length=3, max_length=3)
    amount = forms.DecimalField(
        required=False,
        min_value=Decimal("0.01"),
        max_digits=14,
        decimal_places=2,
        widget=MONEY,
        help_text="Empty: all that is due.",
    )
    memo = forms.CharField(max_length=300, required=False, help_text="e.g. the transfer's ref.")

    def clean_currency(self) -> str:
        return str(self.cleaned_data["currency"]).upper()

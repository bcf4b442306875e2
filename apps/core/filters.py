"""Query-parameter filters shared by every app's API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, turned into UTC before it reaches a query: PostgreSQL compares
    timestamps with offsets of at most 15:59, ISO allows up to 23:59 (a 500 before)."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Date and time out of range.", code="overflow") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class ChoiceIn(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    """`?status=draft,sent`: each value must be one of the choices (a 400 names the wrong one),
    and the schema lists them."""

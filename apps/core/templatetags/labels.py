"""Template filters over apps.core.labels: `{% load labels %}` then `{{ code|label }}`,
`{{ code|label_unit }}` ("Power (kW)"), `{{ value|quantity:code }}` ("14.96 kW")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template

from apps.core import labels

register = template.Library()


@register.filter(name="label")
def label(code: Any, group: str | None = None) -> str:
    return labels.label(code, group or None)


@register.filter(name="words")
def words(text: Any) -> str:
    """Free text (a tag) as it is, unless it is a code."""
    return labels.words(text)


@register.filter(name="label_unit")
def label_unit(code: Any, group: str | None = None) -> str:
    return labels.label_with_unit(code, group or None)


@register.filter(name="unit")
def unit(code: Any) -> str:
    """The unit a code's values are in ("load_kw" -> "kW"), or ""."""
    return labels.unit(code)


@register.filter(name="quantity")
def quantity(value: Any, code: Any = None) -> str:
    return labels.quantity(value, code)


@register.filter(name="labels")
def labels_list(codes: Any, group: str | None = None) -> str:
    """A list of codes as its labels joined by commas: ["fdm", "sla"] -> "FDM printing, SLA
    printing"."""
    if not codes:
        return ""
    if isinstance(codes, str):
        codes = [codes]
    return ", ".join(labels.label(code, group or None) for code in codes)


@register.filter(name="iso_datetime")
def iso_datetime(value: Any) -> datetime | None:
    """An ISO 8601 timestamp kept as text (a gateway's report) as a datetime for `|date`, or
    None when it is missing or not one."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None

"""Template filters of the marketplace pages."""

from __future__ import annotations

from typing import Any

from django import template

from apps.marketplace.services.listing_content import playbook_step_settings

register = template.Library()


@register.filter
def settings_in_order(step: dict[str, Any]) -> list[tuple[str, Any]]:
    """{% for name, value in step|settings_in_order %}: a playbook step's settings in the
    order the seller gave them."""
    return playbook_step_settings(step) if isinstance(step, dict) else []

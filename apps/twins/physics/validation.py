"""The one error of the physics models and the number check every input goes through."""

from __future__ import annotations

import math


class PhysicsError(ValueError):
    """Inputs outside what the models accept: every bad field as "field: what is allowed"."""


def _number(value: object) -> float | None:
    """`value` as a finite float, or None when it is not one (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def within(value: object, low: float, high: float, *, low_inclusive: bool = False) -> bool:
    number = _number(value)
    if number is None:
        return False
    above = number >= low if low_inclusive else number > low
    return above and number <= high

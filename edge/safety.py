"""Local threshold checks on the gateway, so a machine raises alerts while offline too.
Defaults follow the platform's rules: temperature > 75 C warning, > 85 C critical; vibration
> 2.5 mm/s warning, > 4.0 critical."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

DEFAULT_LIMITS: dict[str, tuple[float, float]] = {
    "temperature_c": (75.0, 85.0),
    "vibration_mm_s": (2.5, 4.0),
}


@dataclass(frozen=True)
class LocalAlert:
    node: int
    signal: str
    severity: str  # "warning" or "critical"
    value: float
    time: datetime


def check(
    node: int,
    time: datetime,
    values: Mapping[str, float],
    limits: Mapping[str, tuple[float, float]],
) -> list[LocalAlert]:
    alerts = []
    for signal, (warning, critical) in limits.items():
        value = values.get(signal)
        if value is None:
            continue
        if value > critical:
            alerts.append(LocalAlert(node, signal, "critical", value, time))
        elif value > warning:
            alerts.append(LocalAlert(node, signal, "warning", value, time))
    return alerts

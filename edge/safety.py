"""Local threshold checks on the gateway, so a machine raises alerts while offline too.
Defaults follow the platform's rules: temperature > 75 C warning, > 85 C critical; vibration
> 2.5 mm/s warning, > 4.0 critical. A device's config may override them per signal (a printer's
hot end runs at 210 C).

The monitor reports changes, not every reading: an alert when a signal's severity rises, and a
"cleared" event once it falls back below the warning threshold by a margin (hysteresis), so a
value hovering at a threshold does not flap at the poll rate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

DEFAULT_LIMITS: dict[str, tuple[float, float]] = {
    "temperature_c": (75.0, 85.0),
    "vibration_mm_s": (2.5, 4.0),
}
HYSTERESIS = 0.05  # fall 5% below a threshold before leaving its level


@dataclass(frozen=True)
class LocalAlert:
    node: int
    signal: str
    severity: str  # "warning", "critical" or "cleared"
    value: float
    time: datetime
    message: str = ""  # for alerts that are not a threshold (e.g. points dead-lettered)


def level_of(value: float, warning: float, critical: float, current: str) -> str:
    """The severity of `value`, leaving the current level only past the hysteresis margin."""
    if value > critical:
        return "critical"
    if current == "critical" and value > critical - abs(critical) * HYSTERESIS:
        return "critical"
    if value > warning:
        return "warning"
    if current != "normal" and value > warning - abs(warning) * HYSTERESIS:
        return "warning"
    return "normal"


@dataclass
class SafetyMonitor:
    node: int
    limits: Mapping[str, tuple[float, float]]
    state: dict[str, str] = field(default_factory=dict)

    def check(self, time: datetime, values: Mapping[str, float]) -> list[LocalAlert]:
        alerts = []
        for signal, (warning, critical) in self.limits.items():
            value = values.get(signal)
            if value is None:
                continue
            before = self.state.get(signal, "normal")
            after = level_of(value, warning, critical, before)
            if after == before:
                continue
            self.state[signal] = after
            # up or down a level: say so; back to normal: "cleared"
            severity = "cleared" if after == "normal" else after
            alerts.append(LocalAlert(self.node, signal, severity, value, time))
        return alerts

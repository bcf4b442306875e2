"""Local safety thresholds on the gateway: alerts on change, with hysteresis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge.safety import DEFAULT_LIMITS, SafetyMonitor

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def run(monitor: SafetyMonitor, temperatures: list[float]) -> list[tuple[str, float]]:
    events = []
    for i, value in enumerate(temperatures):
        for alert in monitor.check(T0 + timedelta(seconds=i), {"temperature_c": value}):
            events.append((alert.severity, alert.value))
    return events


def test_a_signal_hovering_at_a_threshold_alerts_once():
    monitor = SafetyMonitor(1, DEFAULT_LIMITS)
    # hovers around 75 C (warning), never 5% below it, then cools down
    events = run(monitor, [70, 75.5, 74.8, 75.2, 74.0, 75.9, 74.5, 60])
    assert events == [("warning", 75.5), ("cleared", 60)]


def test_severity_rises_and_falls_level_by_level():
    monitor = SafetyMonitor(1, DEFAULT_LIMITS)
    events = run(monitor, [80, 90, 84, 80, 76, 70])
    # 84 is within 5% of 85: still critical; 80 is below that: warning again
    assert events == [("warning", 80), ("critical", 90), ("warning", 80), ("cleared", 70)]


def test_per_device_limits_override_the_defaults():
    printer = SafetyMonitor(2, {**DEFAULT_LIMITS, "temperature_c": (240.0, 260.0)})
    assert run(printer, [25, 150, 210, 212]) == []
    assert run(printer, [245]) == [("warning", 245)]
    assert run(SafetyMonitor(3, DEFAULT_LIMITS), [210]) == [("critical", 210)]

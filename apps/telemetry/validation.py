"""Fast, row-by-row validation of telemetry points (no DRF serializer on the hot path).

A point is a JSON object: {"node": 7, "time": "2026-11-23T10:00:00.250Z" | epoch seconds,
"temperature_c": 41.2, ..., "job_id": 12, "extra": {"coolant_flow_l_min": 3.1},
"units": {"temperature": "F"}}. `units` converts a signal given in another unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apps.telemetry.models import SIGNAL_RANGES

MAX_FUTURE = timedelta(minutes=5)  # tolerated clock skew of a gateway
MAX_PAST = timedelta(days=365)
MAX_EXTRA_KEYS = 50
ALLOWED_KEYS = {"node", "time", "job_id", "extra", "units", *SIGNAL_RANGES}

# signal -> {unit: function to the stored unit}
UNIT_CONVERSIONS: dict[str, dict[str, Any]] = {
    "temperature_c": {"C": lambda v: v, "F": lambda v: (v - 32) * 5 / 9, "K": lambda v: v - 273.15},
    "vibration_mm_s": {"mm/s": lambda v: v, "in/s": lambda v: v * 25.4},
    "power_kw": {"kW": lambda v: v, "W": lambda v: v / 1000, "MW": lambda v: v * 1000},
    "spindle_rpm": {"rpm": lambda v: v, "rps": lambda v: v * 60},
    "torque_nm": {"Nm": lambda v: v, "lbf_ft": lambda v: v * 1.3558179483},
    "progress_pct": {"%": lambda v: v, "ratio": lambda v: v * 100},
}
UNIT_ALIASES = {
    "temperature": "temperature_c",
    "vibration": "vibration_mm_s",
    "power": "power_kw",
    "spindle": "spindle_rpm",
    "torque": "torque_nm",
    "progress": "progress_pct",
}


@dataclass(frozen=True, slots=True)
class CleanPoint:
    node_id: int
    time: datetime
    job_id: int | None
    values: tuple[float | None, ...]  # in SIGNAL_RANGES order
    extra: dict[str, Any]


SIGNALS = tuple(SIGNAL_RANGES)


def parse_time(value: Any) -> datetime:
    if isinstance(value, bool):
        raise ValueError("time must be an ISO 8601 string or epoch seconds")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("time is not finite")
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise ValueError("time needs a timezone (e.g. 'Z' or '+00:00')")
        return parsed.astimezone(UTC)
    raise ValueError("time must be an ISO 8601 string or epoch seconds")


def clean_point(raw: Any, *, now: datetime) -> tuple[CleanPoint | None, dict[str, str]]:
    """The clean point, or None and {field: reason} for everything wrong with it."""
    if not isinstance(raw, dict):
        return None, {"point": "must be a JSON object"}
    errors: dict[str, str] = {}
    unknown = set(raw) - ALLOWED_KEYS
    for key in sorted(unknown):
        errors[key] = "unknown field (put other signals in 'extra')"

    node = raw.get("node")
    if isinstance(node, bool) or not isinstance(node, int) or node <= 0:
        errors["node"] = "required: the node's id (a positive integer)"
    try:
        when = parse_time(raw.get("time"))
    except (ValueError, OverflowError, OSError) as exc:
        errors["time"] = str(exc) if raw.get("time") is not None else "required"
    else:
        if when > now + MAX_FUTURE:
            errors["time"] = "is in the future (check the gateway's clock)"
        elif when < now - MAX_PAST:
            errors["time"] = "is older than the one-year ingest window"

    job_id = raw.get("job_id")
    if job_id is not None and (
        isinstance(job_id, bool) or not isinstance(job_id, int) or job_id <= 0
    ):
        errors["job_id"] = "must be a positive integer or null"

    units = raw.get("units") or {}
    if not isinstance(units, dict):
        errors["units"] = 'must be an object like {"temperature": "F"}'
        units = {}
    converters: dict[str, Any] = {}
    for name, unit in units.items():
        signal = UNIT_ALIASES.get(name, name)
        table = UNIT_CONVERSIONS.get(signal)
        if table is None:
            errors[f"units.{name}"] = "no such signal"
        elif unit not in table:
            errors[f"units.{name}"] = f"unknown unit {unit!r}; use one of {', '.join(table)}"
        else:
            converters[signal] = table[unit]

    values: list[float | None] = []
    present = False
    for signal in SIGNALS:
        value = raw.get(signal)
        if value is None:
            values.append(None)
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            errors[signal] = "must be a finite number"
            values.append(None)
            continue
        value = float(converters[signal](value) if signal in converters else value)
        low, high = SIGNAL_RANGES[signal]
        if not low <= value <= high:
            errors[signal] = f"{value:g} is outside the physical range [{low:g}, {high:g}]"
        values.append(value)
        present = True

    extra = raw.get("extra") or {}
    if not isinstance(extra, dict):
        errors["extra"] = "must be an object of signal name -> number, string or boolean"
        extra = {}
    elif len(extra) > MAX_EXTRA_KEYS:
        errors["extra"] = f"at most {MAX_EXTRA_KEYS} extra signals"
    else:
        for key, value in extra.items():
            if not isinstance(value, int | float | str | bool) or (
                isinstance(value, float) and not math.isfinite(value)
            ):
                errors[f"extra.{key}"] = "must be a finite number, a string or a boolean"
            elif isinstance(value, str) and len(value) > 200:
                errors[f"extra.{key}"] = "strings are limited to 200 characters"
        present = present or bool(extra)
    if not present and not errors:
        errors["point"] = "carries no signal"
    if errors:
        return None, errors
    return CleanPoint(int(node), when, job_id, tuple(values), extra), {}  # type: ignore[arg-type]

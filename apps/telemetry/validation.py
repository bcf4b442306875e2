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
MAX_EXTRA_KEY_LENGTH = 64
MAX_EXTRA_STRING_LENGTH = 200
INT8_MAX = 2**63 - 1  # ids are stored as PostgreSQL bigint
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


def text_problem(value: str) -> str | None:
    """Why PostgreSQL cannot store `value` in text or jsonb, or None when it can."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which cannot be stored"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (e.g. \\ud800), which is not valid Unicode"
    return None


def shown(key: object, limit: int = 40) -> str:
    """`key` as it can be echoed in an error (JSON and MQTT cannot carry lone surrogates)."""
    safe = str(key).encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")
    return safe if len(safe) <= limit else safe[:limit] + "..."


def parse_time(value: Any) -> datetime:
    if isinstance(value, bool):
        raise ValueError("time must be an ISO 8601 string or epoch seconds")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("time is not finite")
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        if len(value) > 64:
            raise ValueError("time is too long for an ISO 8601 timestamp")
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
        errors[shown(key)] = "unknown field (put other signals in 'extra')"

    node = raw.get("node")
    if isinstance(node, bool) or not isinstance(node, int) or not 0 < node <= INT8_MAX:
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
        isinstance(job_id, bool) or not isinstance(job_id, int) or not 0 < job_id <= INT8_MAX
    ):
        errors["job_id"] = f"must be a positive integer up to {INT8_MAX} or null"

    units = raw.get("units") or {}
    if not isinstance(units, dict):
        errors["units"] = 'must be an object like {"temperature": "F"}'
        units = {}
    converters: dict[str, Any] = {}
    for name, unit in units.items():
        signal = UNIT_ALIASES.get(name, name)
        table = UNIT_CONVERSIONS.get(signal)
        if table is None:
            errors[f"units.{shown(name)}"] = "no such signal"
        elif not isinstance(unit, str) or unit not in table:
            errors[f"units.{shown(name)}"] = (
                f"unknown unit {shown(unit)!r}; use one of {', '.join(table)}"
            )
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
            field_name = f"extra.{shown(key)}"
            key_problem = text_problem(key)
            if key_problem is not None:
                errors[field_name] = f"the signal name {key_problem}"
            elif not 0 < len(key) <= MAX_EXTRA_KEY_LENGTH:
                errors[field_name] = f"signal names are 1-{MAX_EXTRA_KEY_LENGTH} characters"
            elif not isinstance(value, int | float | str | bool) or (
                isinstance(value, float) and not math.isfinite(value)
            ):
                errors[field_name] = "must be a finite number, a string or a boolean"
            elif isinstance(value, str):
                if len(value) > MAX_EXTRA_STRING_LENGTH:
                    errors[field_name] = (
                        f"strings are limited to {MAX_EXTRA_STRING_LENGTH} characters"
                    )
                elif (value_problem := text_problem(value)) is not None:
                    errors[field_name] = f"the value {value_problem}"
        present = present or bool(extra)
    if not present and not errors:
        errors["point"] = "carries no signal"
    if errors:
        return None, errors
    return CleanPoint(int(node), when, job_id, tuple(values), extra), {}  # type: ignore[arg-type]

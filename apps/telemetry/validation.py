"""Validation of telemetry points: the rules (`clean_point`, one point at a time, with a reason for
everything wrong) and the fast path over a whole batch (`points_clean`, `points_clean_json`).

A point is a JSON object: {"node": 7, "time": "2026-11-23T10:00:00.250Z" | epoch seconds,
"temperature_c": 41.2, ..., "job_id": 12, "extra": {"coolant_flow_l_min": 3.1},
"units": {"temperature": "F"}}. `units` converts a signal given in another unit.

The fast path decides nothing on its own: msgspec checks types and ranges in C, the columns are
checked with numpy, and every point it is not sure about (a unit to convert, a time outside the
window, an error of any kind) goes through `clean_point`, so accepted values and error messages
are `clean_point`'s by construction. tests/telemetry/test_fast_validation.py holds the two
against each other on generated hostile points.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Annotated, Any

import msgspec
import numpy as np
import numpy.typing as npt
import orjson
from msgspec import Meta

from apps.telemetry.models import SIGNAL_RANGES

MAX_FUTURE = timedelta(minutes=5)  # tolerated clock skew of a gateway
MAX_PAST = timedelta(days=365)
# The admin's bulk import of past telemetry (telemetry_import_history) reaches this far back.
HISTORY_MAX_PAST = timedelta(days=365 * 30)
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


def clean_point(
    raw: Any, *, now: datetime, max_past: timedelta = MAX_PAST
) -> tuple[CleanPoint | None, dict[str, str]]:
    """The clean point, or None and {field: reason} for everything wrong with it. `max_past`
    is how far back a time may be: a year on the live paths, HISTORY_MAX_PAST for the admin's
    import of past telemetry."""
    if not isinstance(raw, dict):
        return None, {"point": "must be a JSON object"}
    errors: dict[str, str] = {}
    unknown = set(raw) - ALLOWED_KEYS
    for key in sorted(unknown):
        errors[shown(key)] = "unknown field (put other signals in 'extra')"

    node = raw.get("node")
    node_id = 0
    if isinstance(node, bool) or not isinstance(node, int) or not 0 < node <= INT8_MAX:
        errors["node"] = "required: the node's id (a positive integer)"
    else:
        node_id = int(node)
    try:
        when = parse_time(raw.get("time"))
    except (ValueError, OverflowError, OSError) as exc:
        errors["time"] = str(exc) if raw.get("time") is not None else "required"
    else:
        if when > now + MAX_FUTURE:
            errors["time"] = "is in the future (check the gateway's clock)"
        elif when < now - max_past:
            errors["time"] = (
                "is older than the one-year ingest window (an administrator can import past "
                "telemetry with `manage.py import_telemetry`)"
                if max_past == MAX_PAST
                else f"is older than the {max_past.days // 365}-year history import window"
            )

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
    return CleanPoint(node_id, when, job_id, tuple(values), extra), {}


def clean_for_node(
    raw: Any, *, node_id: int, now: datetime, max_past: timedelta = MAX_PAST
) -> tuple[CleanPoint | None, dict[str, Any]]:
    """`clean_point`, and a device writes only for its own node."""
    point, errors = clean_point(raw, now=now, max_past=max_past)
    if point is not None and point.node_id != node_id:
        return None, {"node": f"this device may write only for node {node_id}"}
    return point, errors


# --- The fast path: the same rules over a whole batch --------------------------------------

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
# A time that never parses: outside every window, so its point takes the slow path.
UNPARSED = -(2**62)
EMPTY_JSON = b"{}"


def micros(when: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (datetimes have microsecond resolution)."""
    return (when - UNIX_EPOCH) // ONE_MICROSECOND


def from_micros(value: int) -> datetime:
    return UNIX_EPOCH + timedelta(microseconds=value)


def _signal_type(signal: str) -> Any:
    low, high = SIGNAL_RANGES[signal]
    return Annotated[float, Meta(ge=low, le=high)] | None


_Id = Annotated[int, Meta(gt=0, le=INT8_MAX)]
_ExtraKey = Annotated[str, Meta(min_length=1, max_length=MAX_EXTRA_KEY_LENGTH)]
_ExtraValue = (
    bool
    | int
    | Annotated[float, Meta(ge=-sys.float_info.max, le=sys.float_info.max)]  # NaN fails both
    | Annotated[str, Meta(max_length=MAX_EXTRA_STRING_LENGTH)]
)
_Extra = Annotated[dict[_ExtraKey, _ExtraValue], Meta(max_length=MAX_EXTRA_KEYS)]

# A point whose every field has a type and range `clean_point` accepts, checked by msgspec in C.
# What types cannot say (a unit to convert, the time's format and window, NUL characters, a
# point without signals, another node) is checked on the decoded batch; a point that fails to
# decode, or any of those checks, goes through `clean_point`.
PointShape: Any = msgspec.defstruct(
    "PointShape",
    [
        ("node", _Id),
        ("time", str | int | float),
        ("job_id", _Id | None, None),
        ("extra", _Extra | None, None),
        ("units", dict[Any, Any] | None, None),
        *((signal, _signal_type(signal), None) for signal in SIGNALS),
    ],
    forbid_unknown_fields=True,
    gc=False,  # holds no cycles, and 10,000 tracked objects a batch would wake the collector
)


class _Envelope(msgspec.Struct, gc=False):
    points: list[PointShape]


_decoder = msgspec.json.Decoder(list[PointShape] | _Envelope)
_get_node, _get_time, _get_job, _get_extra, _get_units = (
    attrgetter(name) for name in ("node", "time", "job_id", "extra", "units")
)
_get_signals = [attrgetter(signal) for signal in SIGNALS]


@dataclass(frozen=True, slots=True)
class CleanBatch:
    """The clean points of one request as columns, ordered by their index in the request.
    Absent values need no mask: a job id is positive and a signal finite, so 0 and NaN say
    "none"."""

    node_id: int
    indexes: npt.NDArray[np.int64]  # each point's index in the request
    times: npt.NDArray[np.int64]  # microseconds since the Unix epoch (UTC)
    job_ids: npt.NDArray[np.int64]  # 0: none
    values: npt.NDArray[np.float64]  # (points, len(SIGNALS)), NaN: absent
    extras: list[dict[str, Any] | None]  # None: {}
    extras_json: list[bytes]  # each extra as JSON, as jsonb stores it

    def __len__(self) -> int:
        return len(self.indexes)

    def take(self, rows: slice | npt.NDArray[Any]) -> CleanBatch:
        """The points at `rows` (a slice, a boolean mask or positions)."""
        if isinstance(rows, slice):
            extras, extras_json = self.extras[rows], self.extras_json[rows]
        else:
            positions = np.arange(len(self))[rows].tolist()
            extras = [self.extras[i] for i in positions]
            extras_json = [self.extras_json[i] for i in positions]
        return CleanBatch(
            self.node_id,
            self.indexes[rows],
            self.times[rows],
            self.job_ids[rows],
            self.values[rows],
            extras,
            extras_json,
        )

    def point(self, row: int) -> CleanPoint:
        """Point `row` as `clean_point` returns it."""
        job_id = int(self.job_ids[row])
        values = tuple(None if math.isnan(v) else v for v in self.values[row].tolist())
        time = from_micros(int(self.times[row]))
        return CleanPoint(self.node_id, time, job_id or None, values, self.extras[row] or {})

    @classmethod
    def empty(cls, node_id: int) -> CleanBatch:
        return cls.of_points(node_id, [])

    @classmethod
    def of_points(cls, node_id: int, points: Sequence[tuple[int, CleanPoint]]) -> CleanBatch:
        """A batch of points `clean_point` returned, with their indexes (the slow path)."""
        nan = math.nan
        return cls(
            node_id,
            np.array([i for i, _ in points], dtype=np.int64),
            np.array([micros(p.time) for _, p in points], dtype=np.int64),
            np.array([p.job_id or 0 for _, p in points], dtype=np.int64),
            np.array(
                [[nan if v is None else v for v in p.values] for _, p in points], dtype=np.float64
            ).reshape(len(points), len(SIGNALS)),
            [p.extra or None for _, p in points],
            [extra_json(p.extra) for _, p in points],
        )

    @classmethod
    def concat(cls, first: CleanBatch, second: CleanBatch) -> CleanBatch:
        """Both batches' points, ordered by index."""
        joined = cls(
            first.node_id,
            np.concatenate([first.indexes, second.indexes]),
            np.concatenate([first.times, second.times]),
            np.concatenate([first.job_ids, second.job_ids]),
            np.concatenate([first.values, second.values]),
            first.extras + second.extras,
            first.extras_json + second.extras_json,
        )
        return joined.take(np.argsort(joined.indexes, kind="stable"))


def extra_json(extra: dict[str, Any]) -> bytes:
    """`extra` as JSON; integers beyond 64 bits (valid, but beyond orjson) through json."""
    try:
        return orjson.dumps(extra)
    except TypeError:
        return json.dumps(extra).encode()


Rejections = list[dict[str, Any]]  # [{"index": i, "errors": {field: reason}}], by index


class BatchShapeError(ValueError):
    """A body that is JSON but no batch of points; the message says what to send."""


def points_decode(body: bytes) -> tuple[list[Any], bool]:
    """The points of a JSON body (an array of points, or {"points": [...]}) and whether they
    are all `PointShape`s (else they are what orjson decoded: the slow path's input).
    Raises orjson.JSONDecodeError for a body that is not JSON, BatchShapeError for one that
    holds no list of points."""
    try:
        decoded = _decoder.decode(body)
    except msgspec.DecodeError:  # also its subclass ValidationError: a type or range
        payload = orjson.loads(body)
        points = payload.get("points") if isinstance(payload, dict) else payload
        if not isinstance(points, list):
            raise BatchShapeError('Send a JSON array of points, or {"points": [...]}.') from None
        return points, False
    return (decoded if isinstance(decoded, list) else decoded.points), True


def points_clean_json(
    body: bytes, points: list[Any], shaped: bool, *, node_id: int, now: datetime
) -> tuple[CleanBatch, Rejections]:
    """What `points_clean(points=orjson.loads(body)...)` returns, from `points_decode(body)`."""
    if not shaped:
        return points_clean(points, node_id=node_id, now=now)

    def raw() -> list[Any]:  # the body as orjson decodes it: the slow path's input
        payload = orjson.loads(body)
        found: list[Any] = payload["points"] if isinstance(payload, dict) else payload
        return found

    return _clean(points, raw, node_id=node_id, now=now)


def points_clean(
    points: Sequence[Any], *, node_id: int, now: datetime, max_past: timedelta = MAX_PAST
) -> tuple[CleanBatch, Rejections]:
    """The clean points of a batch written by the device of `node_id`, and the rejected ones
    with `clean_for_node`'s errors."""
    return _clean(_shapes(points), lambda: points, node_id=node_id, now=now, max_past=max_past)


_PLAIN = (dict, type(None))
# msgspec.convert raises ValidationError for a type or range, and UnicodeEncodeError (a
# ValueError) when it names a field with a lone surrogate in its error message.
_NOT_A_SHAPE = (msgspec.ValidationError, ValueError, TypeError)


def _shapes(points: Sequence[Any]) -> list[Any]:
    """Each point as a PointShape, or None where msgspec refuses it. Only plain dicts: msgspec
    also reads other mappings, which `clean_point` refuses."""
    if all(p.__class__ is dict and p.get("extra").__class__ in _PLAIN for p in points):
        try:
            return msgspec.convert(points, list[PointShape])
        except _NOT_A_SHAPE:
            pass
    return [_shape(p) for p in points]


def _shape(point: Any) -> Any:
    if point.__class__ is not dict or point.get("extra").__class__ not in _PLAIN:
        return None
    try:
        return msgspec.convert(point, PointShape)
    except _NOT_A_SHAPE:
        return None


def _clean(
    shapes: list[Any],
    raw: Callable[[], Sequence[Any]],
    *,
    node_id: int,
    now: datetime,
    max_past: timedelta = MAX_PAST,
) -> tuple[CleanBatch, Rejections]:
    """Clean `shapes` (None: not a PointShape); the points the fast checks do not pass go
    through `clean_for_node` on `raw()`, the batch as given."""
    batch, slow = _clean_shapes(shapes, node_id=node_id, now=now, max_past=max_past)
    if not slow:
        return batch, []
    points = raw()
    rejected: Rejections = []
    clean: list[tuple[int, CleanPoint]] = []
    for index in slow:
        point, errors = clean_for_node(points[index], node_id=node_id, now=now, max_past=max_past)
        if point is None:
            rejected.append({"index": index, "errors": errors})
        else:
            clean.append((index, point))
    if clean:
        batch = CleanBatch.concat(batch, CleanBatch.of_points(node_id, clean))
    return batch, rejected


def _clean_shapes(
    shapes: list[Any], *, node_id: int, now: datetime, max_past: timedelta = MAX_PAST
) -> tuple[CleanBatch, list[int]]:
    """The points the fast checks pass, as a batch, and the indexes of the others."""
    where = np.arange(len(shapes), dtype=np.int64)
    unshaped = [i for i, s in enumerate(shapes) if s is None] if None in shapes else []
    if unshaped:
        where = np.delete(where, unshaped)
        shapes = [s for s in shapes if s is not None]
    n = len(shapes)
    if not n:
        return CleanBatch.empty(node_id), unshaped
    fast = np.ones(n, dtype=bool)

    nodes = list(map(_get_node, shapes))
    if nodes.count(node_id) != n:
        fast &= np.array(nodes, dtype=object) == node_id
    units = list(map(_get_units, shapes))
    if units.count(None) != n:
        fast &= np.array([not u for u in units])  # a unit to convert: clean_point does

    times = _times(list(map(_get_time, shapes)))
    earliest, latest = micros(now - max_past), micros(now + MAX_FUTURE)
    fast &= (times >= earliest) & (times <= latest)

    values = np.full((n, len(SIGNALS)), np.nan)
    for position, get in enumerate(_get_signals):
        column = list(map(get, shapes))
        if column.count(None) != n:
            values[:, position] = np.array(column, dtype=np.float64)  # None -> NaN
    has_signal = ~np.isnan(values).all(axis=1)

    jobs = list(map(_get_job, shapes))
    if jobs.count(None) == n:
        job_ids = np.zeros(n, dtype=np.int64)
    else:
        job_ids = np.array([j or 0 for j in jobs], dtype=np.int64)

    extras = list(map(_get_extra, shapes))
    extras_json = [EMPTY_JSON] * n
    if extras.count(None) != n:
        for position, extra in enumerate(extras):
            if not extra:
                continue
            has_signal[position] = True
            try:
                text = orjson.dumps(extra)
            except TypeError:  # a lone surrogate, an integer beyond 64 bits
                fast[position] = False
                continue
            if b"\\u0000" in text:  # NUL in a key or value (or a backslash and "u0000")
                fast[position] = False
            extras_json[position] = text
    fast &= has_signal  # a point without signal: clean_point says so

    batch = CleanBatch(node_id, where, times, job_ids, values, extras, extras_json)
    if fast.all():
        return batch, unshaped
    return batch.take(fast), sorted(unshaped + where[~fast].tolist())


def _times(values: list[Any]) -> npt.NDArray[np.int64]:
    """Each time in microseconds as `parse_time` reads it, UNPARSED where it raises. Times as
    gateways write them (isoformat(), toISOString()) are read a column at a time; the rest one
    by one, as parse_time does."""
    if set(map(type, values)) == {str}:
        times = _iso_micros(values)
        for position in np.flatnonzero(times == UNPARSED).tolist():
            times[position] = _time_micros(values[position])
        return times
    return np.array([_time_micros(value) for value in values], dtype=np.int64)


def _time_micros(value: Any) -> int:
    """One time in microseconds as parse_time reads it, UNPARSED where it raises (or might:
    a str subclass, a time longer than parse_time reads)."""
    try:
        if value.__class__ is str:
            if len(value) > 64:
                return UNPARSED
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                return UNPARSED
        else:  # int or float (PointShape): epoch seconds
            parsed = datetime.fromtimestamp(value, tz=UTC)
        return (parsed - UNIX_EPOCH) // ONE_MICROSECOND
    except (ValueError, OverflowError, OSError):
        return UNPARSED


# The spellings read a column at a time, all of which datetime.fromisoformat reads the same:
# YYYY-MM-DDTHH:MM:SS, then nothing, .fff or .ffffff, then Z or +HH:MM / -HH:MM. Their
# lengths differ, so a string's length says which it is: length -> (fraction digits, zone).
_ISO_SPELLINGS = {
    19 + (digits + 1 if digits else 0) + len(zone): (digits, zone)
    for digits in (0, 3, 6)
    for zone in ("Z", "+HH:MM")
}
_DIGIT_POSITIONS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_LITERALS = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":"}
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _iso_micros(texts: list[str]) -> npt.NDArray[np.int64]:
    """Microseconds of each text in one of _ISO_SPELLINGS, UNPARSED for any other text or an
    impossible date or time (the caller reads those one by one)."""
    out = np.full(len(texts), UNPARSED, dtype=np.int64)
    # Python's lengths: numpy drops trailing NUL characters. Only texts of a spelling's length
    # go into the array, whose width is its longest text: one megabyte-long time among 10,000
    # would make it 40 GB.
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    candidates = np.flatnonzero(np.isin(lengths, list(_ISO_SPELLINGS)))
    if not candidates.size:
        return out
    if candidates.size < len(texts):
        texts = [texts[i] for i in candidates.tolist()]
    codes = np.array(texts, dtype=str).view(np.uint32).reshape(len(texts), -1)  # code points
    lengths = lengths[candidates]
    for length in np.unique(lengths).tolist():
        fraction_digits, zone = _ISO_SPELLINGS[length]
        rows = np.flatnonzero(lengths == length)
        out[candidates[rows]] = _spelling_micros(
            codes[rows, :length].astype(np.int64), fraction_digits, zone
        )
    return out


def _spelling_micros(
    chars: npt.NDArray[np.int64], fraction_digits: int, zone: str
) -> npt.NDArray[np.int64]:
    """Microseconds of rows of code points that all have one spelling, UNPARSED where a row
    does not match it or is no real date and time (February 30th, 24:00, +24:00)."""
    digits = chars - ord("0")
    ok = np.ones(len(chars), dtype=bool)
    for position, literal in _LITERALS.items():
        ok &= chars[:, position] == ord(literal)
    digit_positions = list(_DIGIT_POSITIONS)
    if fraction_digits:
        ok &= chars[:, 19] == ord(".")
        digit_positions += range(20, 20 + fraction_digits)
    zone_at = chars.shape[1] - len(zone)
    if zone == "Z":
        ok &= chars[:, zone_at] == ord("Z")
    else:
        ok &= (chars[:, zone_at] == ord("+")) | (chars[:, zone_at] == ord("-"))
        ok &= chars[:, zone_at + 3] == ord(":")
        digit_positions += [zone_at + 1, zone_at + 2, zone_at + 4, zone_at + 5]
    ok &= ((digits[:, digit_positions] >= 0) & (digits[:, digit_positions] <= 9)).all(axis=1)
    digits = np.where(ok[:, None], digits, 0)

    def number(start: int, width: int) -> npt.NDArray[np.int64]:
        value = np.zeros(len(chars), dtype=np.int64)
        for position in range(start, start + width):
            value = value * 10 + digits[:, position]
        return value

    year, month, day = number(0, 4), number(5, 2), number(8, 2)
    hour, minute, second = number(11, 2), number(14, 2), number(17, 2)
    fraction = number(20, fraction_digits) * 10 ** (6 - fraction_digits)
    if zone == "Z":
        shift = np.zeros(len(chars), dtype=np.int64)
    else:
        zone_hours, zone_minutes = number(zone_at + 1, 2), number(zone_at + 4, 2)
        ok &= (zone_hours <= 23) & (zone_minutes <= 59)
        sign = np.where(chars[:, zone_at] == ord("-"), -1, 1)
        shift = sign * (zone_hours * 60 + zone_minutes)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _MONTH_DAYS[np.clip(month, 0, 12)] + (leap & (month == 2))
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    # Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)
    shifted_year = year - (month <= 2)
    era = shifted_year // 400
    year_of_era = shifted_year - era * 400
    day_of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    minutes = (days * 24 + hour) * 60 + minute - shift
    micros = (minutes * 60 + second) * 1_000_000 + fraction
    return np.where(ok, micros, UNPARSED)

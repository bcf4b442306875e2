"""The fast ingest path (msgspec + numpy over a batch) against the rules it stands for:
`clean_point`, one point at a time, as telemetry_ingest applied it before the fast path (each
point cleaned, then checked against the device's node). For every generated batch, valid and
hostile, each index must be accepted with the same clean point (time, values, job, extra, down
to the sign of a zero and the type of an extra value) or rejected with the same errors, in the
same order; a body must fail to decode exactly when orjson refuses it."""

from __future__ import annotations

import collections
import json
import math
import types
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from apps.telemetry.models import SIGNAL_RANGES
from apps.telemetry.validation import (
    INT8_MAX,
    MAX_EXTRA_KEY_LENGTH,
    MAX_EXTRA_KEYS,
    MAX_EXTRA_STRING_LENGTH,
    MAX_FUTURE,
    MAX_PAST,
    SIGNALS,
    UNIT_ALIASES,
    UNIT_CONVERSIONS,
    UNPARSED,
    BatchShapeError,
    CleanBatch,
    CleanPoint,
    PointShape,
    _clean_shapes,
    _iso_micros,
    _time_micros,
    clean_point,
    points_clean,
    points_clean_json,
    points_decode,
)

NODE = 7
NOW = datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=UTC)
FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- The rules as they were applied before the fast path ----------------------------------


def reference(points: list[Any]) -> dict[int, Any]:
    """index -> CleanPoint or errors, or the exception clean_point raised."""
    out: dict[int, Any] = {}
    for index, raw in enumerate(points):
        try:
            point, errors = clean_point(raw, now=NOW)
        except Exception as exc:  # noqa: BLE001  (the rules' own crash, compared by type)
            return {-1: type(exc)}
        if point is not None and point.node_id != NODE:
            point, errors = None, {"node": f"this device may write only for node {NODE}"}
        out[index] = point if point is not None else errors
    return out


def outcome(batch: CleanBatch, rejected: list[dict[str, Any]]) -> dict[int, Any]:
    out: dict[int, Any] = {int(i): batch.point(row) for row, i in enumerate(batch.indexes)}
    for rejection in rejected:
        assert rejection["index"] not in out
        out[rejection["index"]] = rejection["errors"]
    assert [r["index"] for r in rejected] == sorted(r["index"] for r in rejected)
    assert batch.indexes.tolist() == sorted(batch.indexes.tolist())
    return out


def exact(value: Any) -> Any:
    """`value` with what == overlooks made visible: -0.0 vs 0.0, True vs 1 vs 1.0, dict order."""
    if isinstance(value, CleanPoint):
        return (
            "point",
            value.node_id,
            repr(value.time),
            value.time.utcoffset(),
            value.job_id,
            type(value.job_id),
            repr(value.values),
            exact(value.extra),
        )
    if isinstance(value, dict):
        return [(k, exact(v)) for k, v in value.items()]
    if isinstance(value, float):
        return (float, repr(value))
    return (type(value), value)


def assert_same(points: list[Any], got: dict[int, Any]) -> None:
    expected = reference(points)
    assert sorted(got) == sorted(expected)
    for index in expected:
        assert exact(got[index]) == exact(expected[index]), (index, points[index])


def fast_clean(points: list[Any]) -> dict[int, Any]:
    try:
        return outcome(*points_clean(points, node_id=NODE, now=NOW))
    except Exception as exc:  # noqa: BLE001
        return {-1: type(exc)}


# --- Hostile and valid points ---------------------------------------------------------------

weird_text = st.text(
    st.characters(codec=None, categories=None, blacklist_categories=()), max_size=12
) | st.sampled_from(["", "\x00", "a\x00b", "\ud800", "x\udfff", "é", "🙂", "null", "\\u0000"])
bad_scalars: st.SearchStrategy[Any] = st.sampled_from(
    [None, True, False, "", "7", [], {}, [1], 0, -1, 1.5, math.nan, math.inf, -math.inf]
)
big_ints = st.sampled_from(
    [0, -1, 1, INT8_MAX, INT8_MAX + 1, 2**64 - 1, 2**64, -(2**63), 10**30, -(10**30)]
)


def bounds() -> st.SearchStrategy[float]:
    edges = []
    for low, high in SIGNAL_RANGES.values():
        for edge in (low, high):
            edges += [edge, math.nextafter(edge, math.inf), math.nextafter(edge, -math.inf)]
    return st.sampled_from(edges)


numbers = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(min_value=-100, max_value=2000)
    | st.integers(min_value=-(10**4), max_value=10**6)
    | big_ints
    | bounds()
    | st.sampled_from([-0.0, 0.0, 1e308, -1e308, 5e-324])
)


def offsets() -> st.SearchStrategy[str]:
    return st.sampled_from(
        ["Z", "z", "+00:00", "-00:00", "+05:30", "-09:45", "+0000", "+00", "+23:59", "+24:00", ""]
    )


@st.composite
def iso_times(draw: st.DrawFn) -> str:
    """ISO strings around the window's limits, in the spellings gateways use and some not."""
    anchor = draw(
        st.sampled_from(
            [
                NOW,
                NOW - MAX_PAST,
                NOW + MAX_FUTURE,
                NOW - timedelta(days=2),
                datetime(1, 1, 2, tzinfo=UTC),
            ]
        )
    )
    shift = timedelta(
        microseconds=draw(st.sampled_from([0, 1, -1, 999, 10**6]) | st.integers(-(10**8), 10**8))
    )
    when = (anchor.replace(tzinfo=None) if anchor.tzinfo else anchor) + shift
    offset = draw(offsets())
    if offset in ("+05:30", "-09:45", "+23:59"):  # the same instant in another zone
        sign = 1 if offset[0] == "+" else -1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        when = when + sign * delta
    fraction = draw(st.sampled_from(["auto", "", ".1", ".25", ".123", ".1234567", ",5", "."]))
    separator = draw(st.sampled_from(["T", "T", "T", " ", "t"]))
    if fraction == "auto":
        text = when.isoformat(sep=separator)
    else:
        text = when.replace(microsecond=0).isoformat(sep=separator) + fraction
    return text + offset


times = (
    iso_times()
    | st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(
        [
            NOW.timestamp(),
            (NOW - MAX_PAST).timestamp(),
            (NOW + MAX_FUTURE).timestamp(),
            int(NOW.timestamp()),
            10**20,
            "2" * 65,
            "2026-02-30T00:00:00Z",
            "2026-11-23T10:00:00",
            "not a time",
            NOW,  # a datetime object, which is not JSON
        ]
    )
    | bad_scalars
)

extra_keys = weird_text | st.sampled_from(["k" * MAX_EXTRA_KEY_LENGTH, "k" * 65, "flow"])
extra_values: st.SearchStrategy[Any] = (
    numbers
    | st.booleans()
    | weird_text
    | st.sampled_from(
        ["s" * MAX_EXTRA_STRING_LENGTH, "s" * (MAX_EXTRA_STRING_LENGTH + 1), None, [], {}, [1]]
    )
)
extras = (
    st.dictionaries(extra_keys, extra_values, max_size=4)
    | st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.integers(),
        min_size=MAX_EXTRA_KEYS - 1,
        max_size=MAX_EXTRA_KEYS + 1,
    )
    | bad_scalars
    | st.just(collections.UserDict({"a": 1}))
    | st.just(types.MappingProxyType({"a": 1}))
)
unit_names = st.sampled_from([*UNIT_ALIASES, *UNIT_CONVERSIONS, "nonsense"]) | weird_text
unit_values = (
    st.sampled_from([u for table in UNIT_CONVERSIONS.values() for u in table])
    | weird_text
    | bad_scalars
)
units = st.dictionaries(unit_names, unit_values, max_size=2) | bad_scalars


@st.composite
def points(draw: st.DrawFn) -> Any:
    """Mostly well-formed points (so the fast path is exercised), each field hostile at times."""
    if draw(st.integers(0, 30)) == 0:
        return draw(bad_scalars | st.just(collections.UserDict({"node": NODE})))
    point: dict[Any, Any] = {}

    def maybe(field: str, good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> None:
        choice = draw(st.integers(0, 9))
        if choice == 0:
            return  # absent
        point[field] = draw(bad if choice == 1 else good)

    maybe("node", st.just(NODE), st.integers(1, 9) | big_ints | bad_scalars)
    maybe("time", iso_times(), times)
    maybe("job_id", st.just(None) | st.integers(1, 10**6), big_ints | bad_scalars)
    for signal in SIGNALS:
        low, high = SIGNAL_RANGES[signal]
        if draw(st.booleans()):
            maybe(signal, st.floats(low, high) | st.integers(int(low), int(high)), numbers)
    if draw(st.integers(0, 3)) == 0:
        point["extra"] = draw(extras)
    if draw(st.integers(0, 5)) == 0:
        point["units"] = draw(units)
    if draw(st.integers(0, 12)) == 0:
        point[draw(weird_text | st.integers())] = draw(extra_values)
    return point


batches = st.lists(points(), max_size=8)


# --- Python objects (the MQTT bridge, other services) ---------------------------------------


@FAST
@given(batches)
@example([{"node": NODE, "time": NOW.isoformat(), "power_kw": 1}])
@example([{"node": NODE, "time": NOW.isoformat(), "power_kw": 1}] * 2)
@example([{"node": NODE, "time": (NOW + MAX_FUTURE).isoformat(), "power_kw": -0.0}])
@example([{"node": NODE, "time": NOW.isoformat(), "extra": {"a": float("nan")}}])
@example([{"node": NODE, "time": NOW.isoformat(), "extra": {"a": "null"}}])
@example([{"node": NODE, "time": NOW.isoformat(), "extra": {"a": 2**64}}])
@example([{"node": NODE, "time": NOW.isoformat(), "units": {"power": "W"}, "power_kw": 5}])
@example([{"node": NODE, "time": NOW.isoformat(), "units": {}, "power_kw": 5}])
@example([{"node": NODE, "time": NOW.isoformat(), "extra": {f"k{i}": i for i in range(51)}}])
@example([{"node": NODE, "time": NOW.isoformat(), "extra": {f"k{i}": i for i in range(50)}}])
@example([{"node": NODE, "time": NOW.isoformat(), "extra": {"s": "s" * 201}}])
@example([{"node": NODE, "time": NOW.isoformat(), "extra": {"s": "é" * 200}}])
@example([{"node": NODE, "time": NOW.isoformat(), "extra": {"k" * 65: 1}}])
@example([{"node": NODE, "time": NOW.isoformat(), "spindle_rpm": 100000.00000000001}])
@example([{"node": NODE, "time": NOW.isoformat(), "temperature_c": -60}])
def test_fast_path_on_objects_accepts_and_rejects_as_clean_point(batch):
    assert_same(batch, fast_clean(batch))


# --- JSON bodies (the batch API) -------------------------------------------------------------

number_texts = st.sampled_from(
    [
        b"1e400",
        b"-1e400",
        b"-0",
        b"-0.0",
        b"1.0",
        b"1E2",
        b"7",
        b"7.0",
        b"123456789012345678901234567890",
    ]
    + [b"18446744073709551615", b"18446744073709551616", b"9223372036854775807", b"1e-400"]
    + [b"NaN", b"Infinity", b"0x10", b"01", b"1.", b"+1"]
)


def dumped(value: Any) -> bytes:
    """JSON text of `value` as a careless encoder writes it (NaN, lone surrogates escaped)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, default=str).encode()


@st.composite
def json_points(draw: st.DrawFn) -> bytes:
    """A point as JSON text, built member by member: repeated keys and raw number spellings."""
    point = draw(points())
    if not isinstance(point, dict) or draw(st.integers(0, 4)) == 0:
        return dumped(point if not isinstance(point, collections.UserDict) else point.data)
    members = [(str(k), v) for k, v in point.items()]
    if members and draw(st.integers(0, 4)) == 0:  # a key twice: orjson keeps the last value
        key, _ = draw(st.sampled_from(members))
        members.insert(draw(st.integers(0, len(members))), (key, draw(extra_values)))
    parts = []
    for key, value in members:
        text = draw(number_texts) if draw(st.integers(0, 15)) == 0 else dumped(value)
        parts.append(dumped(key) + b":" + text)
    return b"{" + b",".join(parts) + b"}"


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    array = b"[" + b", ".join(draw(st.lists(json_points(), max_size=8))) + b"]"
    shape = draw(st.integers(0, 9))
    if shape == 0:
        return b'{"token": "abc", "points": %s}' % array
    if shape == 1:
        return draw(st.sampled_from([b"{}", b'{"points": 3}', b"7", b"[", b"", b'"x"']))
    return array


def fast_json(body: bytes) -> Any:
    try:
        points, shaped = points_decode(body)
        return outcome(*points_clean_json(body, points, shaped, node_id=NODE, now=NOW))
    except Exception as exc:  # noqa: BLE001
        return {-1: type(exc)}


def reference_json(body: bytes) -> Any:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {-1: orjson.JSONDecodeError}
    points = payload.get("points") if isinstance(payload, dict) else payload
    if not isinstance(points, list):
        return {-1: BatchShapeError}
    return points


@FAST
@given(bodies())
@example(b'[{"node": 7, "node": "7", "time": "2026-11-23T10:00:00Z", "power_kw": 1}]')
@example(b'[{"node": 7, "time": "2026-11-23T10:00:00Z", "power_kw": 1, "power_kw": null}]')
@example(b'[{"node": 7, "time": "2026-11-23T10:00:00Z", "extra": {"u": 18446744073709551616}}]')
@example(b'[{"node": 7, "time": "2026-11-23T10:00:00Z", "spindle_rpm": 1e400}]')
@example(b'[{"node": 7, "time": "2026-11-23T10:00:00Z", "extra": {"n": "\\u0000"}}]')
@example(b'[{"node": 7, "time": "2026-11-23T10:00:00Z", "extra": {"n": "\\ud800"}}]')
@example(b'{"points": [{"node": 7, "time": 1795427999.5, "power_kw": 1}], "points": 1}')
@example(b'[{"node": 7, "time": "2026-11-23T10:00:00.%s+00:00", "power_kw": 1}]' % (b"1" * 40))
def test_fast_path_on_json_bodies_accepts_and_rejects_as_orjson_and_clean_point(body):
    expected = reference_json(body)
    got = fast_json(body)
    if isinstance(expected, dict):  # the body itself is refused
        assert got == expected
    else:
        assert_same(expected, got)


# --- Times read a column at a time ------------------------------------------------------------


@st.composite
def iso_like(draw: st.DrawFn) -> str:
    """Texts in (or next to) the spellings read a column at a time: each field mostly in its
    range and sometimes just outside it (02-30, 24:00, 00:60, +24:00, year 0), and at times
    one character replaced (a separator, a digit)."""

    def field(valid: st.SearchStrategy[int], invalid: list[int], width: int = 2) -> str:
        value = draw(
            st.sampled_from(invalid) if invalid and draw(st.integers(0, 7)) == 0 else valid
        )
        return str(value).zfill(width)

    year = field(st.sampled_from([1, 1900, 1969, 1970, 2000, 2024, 2026, 9999]), [0], width=4)
    month = field(st.integers(1, 12), [0, 13, 19])
    day = field(st.integers(1, 31), [0, 32, 39])
    text = f"{year}-{month}-{day}T"
    text += f"{field(st.integers(0, 23), [24, 29])}:{field(st.integers(0, 59), [60, 99])}:"
    text += field(st.integers(0, 59), [60, 61])
    fraction = draw(st.sampled_from([0, 3, 6]))
    if fraction:
        text += "." + field(st.integers(0, 10**fraction - 1), [], width=fraction)
    if draw(st.booleans()):
        text += "Z"
    else:
        text += draw(st.sampled_from("+-")) + field(st.integers(0, 23), [24, 99]) + ":"
        text += field(st.integers(0, 59), [60, 99])
    if draw(st.integers(0, 5)) == 0:
        position = draw(st.integers(0, len(text) - 1))
        replacement = draw(st.sampled_from([*"-:T.Z+ t0", "\x00", "٢"]) | weird_text)
        text = text[:position] + replacement + text[position + 1 :]
    return text


@settings(max_examples=300, deadline=None)
@given(st.lists(iso_like() | iso_times(), min_size=1, max_size=20))
@example(["2026-11-23T10:00:00Z\x00", "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z"])
@example(["1900-02-29T00:00:00Z", "2000-02-29T00:00:00+23:59", "0001-01-01T00:00:00-00:00"])
@example(["2026-01-01T00:00:00+05x30", "2026-01-01T00:00:00+05:60", "2026-01-01T00:00:00+24:00"])
@example(["2026-01-01T00:00:00x123Z", "2026-01-01T00:00:00,123Z", "2026-01-01 00:00:00Z"])
def test_times_read_a_column_at_a_time_are_read_as_one_by_one(texts):
    """_iso_micros may leave a text to the one-by-one reader (UNPARSED), never read it
    differently."""
    fast = _iso_micros(texts).tolist()
    for text, micros in zip(texts, fast, strict=True):
        if micros != UNPARSED:
            assert micros == _time_micros(text), text
    # the gateways' spellings are all read at once
    assert _iso_micros([NOW.isoformat(), "2026-11-23T10:00:00.250Z"]).tolist() == [
        _time_micros(NOW.isoformat()),
        _time_micros("2026-11-23T10:00:00.250Z"),
    ]


# --- The fast path is taken -------------------------------------------------------------------


def test_well_formed_points_never_take_the_slow_path():
    """Otherwise the tests above would pass with no fast path at all."""
    points = [
        {
            "node": NODE,
            "time": (NOW - timedelta(seconds=i)).isoformat().replace("+00:00", z),
            "spindle_rpm": 9000 + i,
            "power_kw": 5.5,
            "job_id": None if i % 2 else 12,
            "extra": {"flow": 1.5, "mode": "auto", "on": True} if i % 3 == 0 else None,
        }
        for i in range(300)
        for z in ("Z", "+00:00")
    ]
    body = orjson.dumps(points)
    decoded, shaped = points_decode(body)
    assert shaped and all(isinstance(p, PointShape) for p in decoded)
    batch, slow = _clean_shapes(decoded, node_id=NODE, now=NOW)
    assert slow == [] and len(batch) == len(points)
    assert_same(points, outcome(batch, []))


@pytest.mark.parametrize(
    "tweak",
    [
        {"units": {"temperature": "F"}, "temperature_c": 100},
        {"time": (NOW + MAX_FUTURE + timedelta(microseconds=1)).isoformat()},
        {"node": NODE + 1},
        {"extra": {"note": "a\x00b"}},
        {"power_kw": None},
    ],
)
def test_a_point_the_fast_checks_cannot_settle_goes_through_clean_point(tweak):
    good = {"node": NODE, "time": NOW.isoformat(), "power_kw": 1.5}
    points = [good, {**good, "time": (NOW - timedelta(seconds=1)).isoformat(), **tweak}]
    batch, slow = _clean_shapes(points_decode(orjson.dumps(points))[0], node_id=NODE, now=NOW)
    assert slow == [1] and batch.indexes.tolist() == [0]
    assert_same(points, fast_clean(points))


def test_times_in_other_zones_are_the_same_instant():
    here = NOW.astimezone(timezone(timedelta(hours=5, minutes=30)))
    batch, _ = points_clean(
        [{"node": NODE, "time": here.isoformat(), "power_kw": 1}], node_id=NODE, now=NOW
    )
    assert batch.point(0).time == NOW and batch.point(0).time.tzinfo is UTC

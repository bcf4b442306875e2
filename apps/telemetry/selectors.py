"""Reads of telemetry, always limited to the nodes the caller may watch."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Avg, Count, Max, Min, Q, QuerySet
from django.db.models.functions import TruncDay, TruncHour, TruncMinute
from django.utils import timezone

from apps.telemetry import rollups
from apps.telemetry.models import SIGNAL_RANGES, TelemetryPoint
from apps.users.models import User
from apps.users.roles import Action, Scope, scope_for
from apps.vendors.models import FabricationNode

# Apps to the right (jobs) add the nodes a user may watch because they run that user's jobs:
# each provider returns a Q over FabricationNode for (user, scope). They register from their
# AppConfig.ready with register_visibility_provider.
VisibilityProvider = Callable[[User, Scope], Q]
visibility_providers: list[VisibilityProvider] = []


def register_visibility_provider(fn: VisibilityProvider) -> VisibilityProvider:
    if fn not in visibility_providers:  # ready() may run twice (tests, autoreload)
        visibility_providers.append(fn)
    return fn


SIGNALS = tuple(SIGNAL_RANGES)
BUCKETS = {"minute": TruncMinute, "hour": TruncHour, "day": TruncDay}


def telemetry_nodes(*, user: User) -> QuerySet[FabricationNode]:
    scope = scope_for(user, Action.TELEMETRY_VIEW)
    nodes = FabricationNode.objects.all()
    if scope is None:
        return nodes.none()
    if scope == Scope.ALL:
        return nodes
    rule = Q(pk__in=[])
    if scope == Scope.OWN_NODES:
        rule = Q(vendor__memberships__user=user)
    elif scope == Scope.OPERATED:
        rule = Q(site__memberships__user=user)
    elif scope == Scope.OWN_ORG:
        rule = Q(vendor__memberships__user=user) | Q(site__memberships__user=user)
    for provider in visibility_providers:
        rule |= provider(user, scope)
    return nodes.filter(rule).distinct()


def telemetry_can_view(*, user: User, node_id: int) -> bool:
    return telemetry_nodes(user=user).filter(pk=node_id).exists()


def point_range(*, node_id: int, start: datetime, end: datetime) -> QuerySet[TelemetryPoint]:
    return TelemetryPoint.objects.filter(node_id=node_id, time__gte=start, time__lt=end).order_by(
        "time"
    )


def point_range_downsampled(
    *,
    node_id: int,
    start: datetime,
    end: datetime,
    max_points: int,
    under_load_kw: float | None = None,
) -> list[dict[str, Any]]:
    """At most `max_points` rows: raw when few enough, else equal time slices computed in the
    database, each with `time`, every built-in signal and `extra`, as raw rows have them. In a
    slice a signal is the average of its readings (None when it has none); an `extra` key holds
    the average of its numeric readings or, when it has none (text, booleans), its newest
    reading (on SQLite a number beyond a double's range reads as None). With `under_load_kw`,
    only readings taken under load count: drawing more than that, with the spindle turning
    where the machine reports one (not a spindle coasting down after its part)."""
    qs = point_range(node_id=node_id, start=start, end=end)
    load_sql, load_params = "", []
    if under_load_kw is not None:
        qs = qs.filter(
            Q(spindle_rpm__gt=0) | Q(spindle_rpm__isnull=True), power_kw__gt=under_load_kw
        )
        load_sql = " AND (spindle_rpm > 0 OR spindle_rpm IS NULL) AND power_kw > %s"
        load_params = [under_load_kw]
    total = qs.count()
    fields = ["time", *SIGNALS, "extra"]
    if total <= max_points:
        return list(qs.values(*fields))
    width = max((end - start) / max_points, timedelta(milliseconds=1))
    postgres = connection.vendor == "postgresql"
    # Slice k is [start + k width, start + (k + 1) width): the database groups by k, clamped
    # to max_points - 1 against rounding at the range's end.
    # Seconds since `start` are computed exactly (PostgreSQL's epoch is numeric; on SQLite
    # whole seconds and the fraction apart), so a point on a slice's edge opens that slice.
    if postgres:
        since = "(extract(epoch FROM time) - extract(epoch FROM %s::timestamptz))"
        slot = f"least(floor({since} / %s), %s)::bigint"
        bounds: list[Any] = [start, end]
        # numeric, as the seconds are: exact on a slice's edge
        slot_params: list[Any] = [start, Decimal(str(width.total_seconds()))]
    else:
        since = (
            "((CAST(strftime('%%s', time) AS INTEGER) - %s) "
            "+ (CAST(substr(time, 20) AS REAL) - %s))"
        )
        slot = f"max(0, min(CAST({since} / %s AS INTEGER), %s))"
        bounds = [
            connection.ops.adapt_datetimefield_value(start),
            connection.ops.adapt_datetimefield_value(end),
        ]
        slot_params = [
            math.floor(start.timestamp()),
            start.microsecond / 1e6,
            width.total_seconds(),
        ]
    where = "WHERE node_id = %s AND time >= %s AND time < %s" + load_sql
    params: list[Any] = [
        *slot_params,
        max_points - 1,
        node_id,
        *bounds,
        *load_params,
    ]
    sql = (
        f"SELECT {slot} AS slot, "
        + ", ".join(f"avg({s})" for s in SIGNALS)
        + f" FROM {TelemetryPoint._meta.db_table} {where} GROUP BY 1 ORDER BY 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        cursor.execute(_extra_slices_sql(slot, where, postgres=postgres), params)
        extra_rows = cursor.fetchall()
    extras: dict[Any, dict[str, Any]] = {}
    for slot_value, key, number, kind, value, *_ in extra_rows:
        extras.setdefault(slot_value, {})[key] = (
            float(number) if number is not None else _json_value(kind, value, postgres=postgres)
        )
    out = []
    for slot_value, *values in rows:
        out.append(
            {
                "time": start + int(slot_value) * width,
                **dict(zip(SIGNALS, values, strict=True)),
                "extra": extras.get(slot_value, {}),
            }
        )
    return out


def _extra_slices_sql(slot: str, where: str, *, postgres: bool) -> str:
    """Per slice and `extra` key: the average of its numeric readings and, for keys without
    any, the type and value of its newest reading. One row per (slice, key) present."""
    table = TelemetryPoint._meta.db_table
    if postgres:
        # jsonb numbers are arbitrary precision: one beyond float8 would fail the cast (and
        # every read of the range); such a reading counts as non-numeric.
        number = (
            "CASE WHEN jsonb_typeof(e.value) = 'number' "
            "THEN abs((e.value)::numeric) < 1e300 ELSE false END"
        )
        return (
            f"SELECT {slot} AS slot, e.key, "
            f"avg(CASE WHEN {number} THEN (e.value)::float8 END), "
            f"(array_agg(jsonb_typeof(e.value) ORDER BY time DESC) "
            f"FILTER (WHERE NOT ({number})))[1], "
            f"(array_agg(e.value ORDER BY time DESC) FILTER (WHERE NOT ({number})))[1] "
            f"FROM {table} CROSS JOIN LATERAL jsonb_each(extra) AS e {where} GROUP BY 1, 2"
        )
    # SQLite: with exactly one max() aggregate, the bare columns e.type and e.value come from
    # the row holding the maximum (documented SQLite behaviour): the newest non-numeric reading.
    number = "CASE WHEN e.type IN ('integer', 'real') THEN abs(e.value) < 1e300 ELSE 0 END"
    return (
        f"SELECT {slot} AS slot, e.key, avg(CASE WHEN {number} THEN e.value END), "
        f"e.type, e.value, max(CASE WHEN NOT ({number}) THEN time END) "
        f"FROM {table}, json_each({table}.extra) AS e {where} GROUP BY 1, 2"
    )


def _json_value(kind: str | None, value: Any, *, postgres: bool) -> Any:
    """A non-numeric `extra` reading as the raw rows hold it."""
    if postgres:
        return json.loads(value) if isinstance(value, str | bytes) else value
    if kind in ("true", "false"):
        return kind == "true"
    if kind in ("array", "object"):
        return json.loads(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # SQLite reads an integer beyond a double's range as infinity: no value
    return value


def point_buckets(
    *, node_id: int, start: datetime, end: datetime, bucket: str, signal: str
) -> list[dict[str, Any]]:
    """avg/min/max/count of `signal` per bucket in [start, end), a row per bucket holding points.
    Hour and day buckets come from the continuous aggregates where they exist (TimescaleDB:
    apps.telemetry.rollups, the same figures), otherwise from a GROUP BY over the raw rows."""
    if rollups.serves(bucket):
        return [
            {
                "bucket": row["bucket"],
                "avg": row[f"{signal}_avg"],
                "min": row[f"{signal}_min"],
                "max": row[f"{signal}_max"],
                "count": row[f"{signal}_count"],
            }
            for row in rollups.rollup_buckets(
                node_id=node_id, start=start, end=end, bucket=bucket, signals=[signal]
            )
        ]
    trunc = BUCKETS[bucket]
    rows = (
        point_range(node_id=node_id, start=start, end=end)
        .annotate(bucket=trunc("time"))
        .values("bucket")
        .annotate(avg=Avg(signal), min=Min(signal), max=Max(signal), count=Count(signal))
        .order_by("bucket")
    )
    return [dict(row) for row in rows]


# latest_points looks this far back first, then further only for the nodes it has not found:
# on a hypertable each step reads only the chunks of its window (a node that never reported
# still costs one index probe per chunk, in the last step).
LATEST_WINDOWS: tuple[timedelta | None, ...] = (timedelta(days=1), timedelta(days=30), None)
_LATEST_COLUMNS = ["node_id", "time", "job_id", *SIGNALS, "extra"]


def _loaded(row: tuple[Any, ...]) -> list[Any]:
    """A raw row as the ORM would load it (`extra` arrives as JSON text)."""
    fields = TelemetryPoint._meta
    out = []
    for name, value in zip(_LATEST_COLUMNS, row, strict=True):
        field = fields.get_field(name.removesuffix("_id") if name == "node_id" else name)
        from_db = getattr(field, "from_db_value", None)
        out.append(from_db(value, None, connection) if from_db and value is not None else value)
    return out


def latest_points(*, node_ids: list[int], now: datetime | None = None) -> list[TelemetryPoint]:
    """The newest point of each node, in the order of `node_ids` (nodes without telemetry are
    left out). On PostgreSQL one query per widening of the time window, each an index probe per
    node (LATERAL ... ORDER BY time DESC LIMIT 1); on SQLite one indexed lookup per node."""
    if not node_ids:
        return []
    if connection.vendor != "postgresql":
        latest = []
        for node_id in node_ids:
            point = TelemetryPoint.objects.filter(node_id=node_id).order_by("-time").first()
            if point is not None:
                latest.append(point)
        return latest
    now = now or timezone.now()
    found: dict[int, TelemetryPoint] = {}
    missing = list(dict.fromkeys(node_ids))
    for window in LATEST_WINDOWS:
        since = "AND p.time > %s" if window is not None else ""
        sql = (
            f"SELECT {', '.join(f'p.{c}' for c in _LATEST_COLUMNS)} "
            "FROM unnest(%s::bigint[]) AS n(id) CROSS JOIN LATERAL ("
            f"SELECT * FROM telemetry_point p WHERE p.node_id = n.id {since} "
            "ORDER BY p.time DESC LIMIT 1) AS p"
        )
        params: list[Any] = [missing] if window is None else [missing, now - window]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for row in cursor.fetchall():
                point = TelemetryPoint.from_db(connection.alias, _LATEST_COLUMNS, _loaded(row))
                found[point.node_id] = point
        missing = [n for n in missing if n not in found]
        if not missing:
            break
    return [found[n] for n in node_ids if n in found]


def default_window() -> timedelta:
    return timedelta(hours=1)


def power_kwh_by_day(
    *, node_ids: list[int], start: datetime, end: datetime, max_gap_s: float
) -> dict[int, dict[date, float]]:
    """kWh each node drew per UTC day of [start, end), from its `power_kw` readings: the
    trapezoid over each pair of consecutive readings at most `max_gap_s` apart (a longer gap is
    a node that was off or silent, and counts nothing), booked on the day of the later reading.
    Everything the machine drew counts, idle or running, as its live readings show it. One
    query, computed in the database (a window function over the node's points)."""
    if not node_ids:
        return {}
    table = TelemetryPoint._meta.db_table
    if connection.vendor == "postgresql":
        gap = "extract(epoch FROM time - lag(time) OVER w)"
        day = "(time AT TIME ZONE 'UTC')::date"
        nodes = "node_id = ANY(%s)"
        params: list[Any] = [list(node_ids), start, end, max_gap_s]
    else:
        gap = "(julianday(time) - julianday(lag(time) OVER w)) * 86400.0"
        day = "date(time)"
        nodes = f"node_id IN ({', '.join(['%s'] * len(node_ids))})"
        params = [
            *node_ids,
            connection.ops.adapt_datetimefield_value(start),
            connection.ops.adapt_datetimefield_value(end),
            max_gap_s,
        ]
    sql = (
        f"SELECT node_id, day, sum(gap * kw) / 3600.0 FROM ("
        f"SELECT node_id, {day} AS day, {gap} AS gap, "
        f"(power_kw + lag(power_kw) OVER w) / 2.0 AS kw "
        f"FROM {table} WHERE {nodes} AND time >= %s AND time < %s AND power_kw IS NOT NULL "
        f"WINDOW w AS (PARTITION BY node_id ORDER BY time)) AS pairs "
        f"WHERE gap <= %s GROUP BY node_id, day"
    )
    out: dict[int, dict[date, float]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for node_id, day_value, kwh in cursor.fetchall():
            when = day_value if isinstance(day_value, date) else date.fromisoformat(day_value)
            out.setdefault(node_id, {})[when] = float(kwh or 0.0)
    return out


def power_hours(
    *, node_ids: list[int], start: datetime, end: datetime
) -> dict[int, dict[datetime, tuple[float, int]]]:
    """(average power_kw, readings) per node and UTC hour of [start, end) (whole hours), from
    the hourly rollup where it exists (TimescaleDB: apps.telemetry.rollups), else a GROUP BY
    over the raw rows (plain PostgreSQL, SQLite): the same figures either way."""
    out: dict[int, dict[datetime, tuple[float, int]]] = {}
    if not node_ids or start >= end:
        return out
    if rollups.serves("hour"):
        for row in rollups.rollup_buckets(
            node_id=None,
            node_ids=node_ids,
            start=start,
            end=end,
            bucket="hour",
            signals=["power_kw"],
        ):
            if row["power_kw_count"]:
                out.setdefault(row["node_id"], {})[row["bucket"]] = (
                    float(row["power_kw_avg"]),
                    int(row["power_kw_count"]),
                )
        return out
    rows = (
        TelemetryPoint.objects.filter(
            node_id__in=node_ids, time__gte=start, time__lt=end, power_kw__isnull=False
        )
        .annotate(hour=TruncHour("time", tzinfo=UTC))
        .values("node_id", "hour")
        .annotate(avg=Avg("power_kw"), n=Count("power_kw"))
        .order_by()
    )
    for hour in rows:
        out.setdefault(hour["node_id"], {})[hour["hour"]] = (float(hour["avg"]), int(hour["n"]))
    return out


def _power_kwh_in_ranges(
    ranges: list[tuple[int, datetime, datetime]], *, max_gap_s: float
) -> dict[int, dict[date, float]]:
    """power_kwh_by_day's trapezoids for the pairs whose later reading lies in one of the
    (node, lo, hi) ranges; the earlier reading may lie up to `max_gap_s` before lo (a pair
    across the range's start is booked in it, as the whole-period computation books it)."""
    out: dict[int, dict[date, float]] = {}
    table = TelemetryPoint._meta.db_table
    postgres = connection.vendor == "postgresql"
    gap = (
        "extract(epoch FROM time - lag(time) OVER w)"
        if postgres
        else "(julianday(time) - julianday(lag(time) OVER w)) * 86400.0"
    )
    day = "(time AT TIME ZONE 'UTC')::date" if postgres else "date(time)"
    back = timedelta(seconds=max_gap_s)

    def moment(value: datetime) -> Any:
        return value if postgres else connection.ops.adapt_datetimefield_value(value)

    for first in range(0, len(ranges), 200):  # a bounded statement whatever the fleet
        chunk = ranges[first : first + 200]
        window = " OR ".join(["(node_id = %s AND time >= %s AND time < %s)"] * len(chunk))
        kept = " OR ".join(["(node_id = %s AND time >= %s AND time < %s)"] * len(chunk))
        params: list[Any] = []
        for node_id, lo, hi in chunk:
            params.extend([node_id, moment(lo - back), moment(hi)])
        params.append(max_gap_s)
        for node_id, lo, hi in chunk:
            params.extend([node_id, moment(lo), moment(hi)])
        sql = (
            f"SELECT node_id, day, sum(gap * kw) / 3600.0 FROM ("
            f"SELECT node_id, time, {day} AS day, {gap} AS gap, "
            f"(power_kw + lag(power_kw) OVER w) / 2.0 AS kw "
            f"FROM {table} WHERE ({window}) AND power_kw IS NOT NULL "
            f"WINDOW w AS (PARTITION BY node_id ORDER BY time)) AS pairs "
            f"WHERE gap <= %s AND ({kept}) GROUP BY node_id, day"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for node_id, day_value, kwh in cursor.fetchall():
                when = day_value if isinstance(day_value, date) else date.fromisoformat(day_value)
                per_day = out.setdefault(node_id, {})
                per_day[when] = per_day.get(when, 0.0) + float(kwh or 0.0)
    return out


# An hour is read from the rollup when its node reported steadily through it: readings in the
# hours before and after it too (not the first or last hour of a run), and at least this share
# of the readings either of them holds (a silence longer than METERED_MAX_GAP_S, ~8 % of an
# hour, shows as fewer readings).
STEADY_SHARE = 0.95


def power_kwh_by_day_rolled(
    *, node_ids: list[int], start: datetime, end: datetime, max_gap_s: float
) -> dict[int, dict[date, float]]:
    """power_kwh_by_day at scale: whole hours from the hourly rollup (average kW x 1 h), raw
    points only where the rollup cannot say what the trapezoids would: the partial hours at
    each end of [start, end), the first and last hour of each run of readings, and hours in
    which the node fell silent for a while (fewer readings than the hours around it hold, or
    fewer than one per `max_gap_s`). A steady hour's average x 1 h is its trapezoids' sum for a
    node sampled at a steady rate (exact at constant power, within a reading's share
    otherwise); tests/energy/test_metered_rollups.py checks that both agree."""
    if not node_ids or start >= end:
        return {}
    lo, hi = rollups.ceil_to(start, rollups.HOUR), rollups.floor_to(end, rollups.HOUR)
    if lo >= hi:
        return power_kwh_by_day(node_ids=node_ids, start=start, end=end, max_gap_s=max_gap_s)
    hours = power_hours(node_ids=node_ids, start=lo, end=hi)
    floor = 3600.0 / max_gap_s
    out: dict[int, dict[date, float]] = {}
    raw: list[tuple[int, datetime, datetime]] = []
    for node_id in sorted(set(node_ids)):
        mine = hours.get(node_id, {})
        spans: list[tuple[datetime, datetime]] = [(start, lo), (hi, end)]
        for hour, (avg_kw, n) in mine.items():
            before, after = mine.get(hour - rollups.HOUR), mine.get(hour + rollups.HOUR)
            steady = (
                before is not None
                and after is not None
                and n >= floor
                and n >= STEADY_SHARE * max(before[1], after[1])
            )
            if steady:
                per_day = out.setdefault(node_id, {})
                per_day[hour.date()] = per_day.get(hour.date(), 0.0) + avg_kw
            else:
                spans.append((hour, hour + rollups.HOUR))
        raw.extend((node_id, a, b) for a, b in rollups.merge(spans) if a < b)
    for node_id, per_day in _power_kwh_in_ranges(raw, max_gap_s=max_gap_s).items():
        mine_out = out.setdefault(node_id, {})
        for day_key, kwh in per_day.items():
            mine_out[day_key] = mine_out.get(day_key, 0.0) + kwh
    return {node_id: per_day for node_id, per_day in out.items() if per_day}


def current_power_kw(
    *, node_ids: list[int], fresh: timedelta, now: datetime | None = None
) -> dict[int, float]:
    """Each node's newest `power_kw` reading, for the nodes that reported one within `fresh`
    (what the Live page shows now); silent nodes are left out."""
    now = now or timezone.now()
    return {
        p.node_id: float(p.power_kw)
        for p in latest_points(node_ids=node_ids, now=now)
        if p.power_kw is not None and p.time >= now - fresh
    }

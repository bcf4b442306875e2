"""Reads of hour and day buckets from TimescaleDB's continuous aggregates (telemetry_hourly,
telemetry_daily: apps/telemetry/storage_layout.py), and the refresh of late data in them.

Where the aggregates exist, a bucket read takes whole days from telemetry_daily, whole hours
from telemetry_hourly and only the partial hours at the range's edges from telemetry_point, and
combines the pieces per output bucket: averages weighted by their counts (an average of
averages would be wrong), min of minima, max of maxima, sum of counts. The result is what a raw
GROUP BY over [start, end) gives. On plain PostgreSQL and SQLite there are no aggregates and the
selectors group the raw rows.

Late data: the aggregates' refresh policy re-materializes only the last 7 days, and between two
policy runs a bucket already materialized hides points that arrive for it. Ingest notes the hours
of points older than LATE_AFTER (TelemetryLateRange, one row per batch of late points, merged
per hour); `late_ranges_refresh` (a Celery beat task) refreshes those ranges with
CALL refresh_continuous_aggregate(...) and deletes the rows it handled.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, connections
from django.utils import timezone

from apps.telemetry.storage_layout import ROLLUP_SIGNALS, ROLLUPS, TABLE, Rollup

logger = logging.getLogger(__name__)

# time_bucket's default origin for intervals of days or less (a Monday, midnight UTC): buckets
# computed here line up with the aggregates' buckets.
ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
VIEWS = {rollup.view: rollup for rollup in ROLLUPS}
HOURLY, DAILY = "telemetry_hourly", "telemetry_daily"
# Output bucket -> the aggregates that may serve it, coarsest first.
TIERS: dict[str, tuple[str, ...]] = {"hour": (HOURLY,), "day": (DAILY, HOURLY)}
WIDTHS = {"hour": HOUR, "day": DAY}
# A point older than this may land in a bucket the refresh policy has already materialized
# (the hourly aggregate's end_offset): its range is noted for a refresh.
LATE_AFTER = HOUR
# Session-level advisory lock: two refresh runs never work on the same ranges at once.
REFRESH_LOCK_KEY = 0x7E1E_0019

_INTERVAL = re.compile(r"^\s*(\d+)\s+(hour|day)s?\s*$")


def interval(text: str) -> timedelta:
    """'1 hour' / '7 days' (the Rollup literals) as a timedelta."""
    match = _INTERVAL.match(text)
    if match is None:
        raise ValueError(f"unsupported interval {text!r}")
    count, unit = int(match.group(1)), match.group(2)
    return timedelta(hours=count) if unit == "hour" else timedelta(days=count)


def floor_to(moment: datetime, width: timedelta) -> datetime:
    return ORIGIN + (moment - ORIGIN) // width * width


def ceil_to(moment: datetime, width: timedelta) -> datetime:
    floor = floor_to(moment, width)
    return floor if floor == moment else floor + width


# --- Which layout --------------------------------------------------------------------------------

_available: dict[tuple[str, str], bool] = {}


def rollups_available(using: str = "default") -> bool:
    """Whether the continuous aggregates exist in this database, asked once per process and
    database: both views and time_bucket() exist only where migration 0002 chose the TimescaleDB
    layout (tests build stand-ins under the same names)."""
    conn = connections[using]
    if conn.vendor != "postgresql":
        return False
    key = (using, str(conn.settings_dict["NAME"]))
    if key not in _available:
        with conn.cursor() as cursor:
            cursor.execute(
                f"SELECT to_regclass('{HOURLY}') IS NOT NULL AND to_regclass('{DAILY}') "
                "IS NOT NULL AND to_regprocedure('time_bucket(interval, timestamptz)') "
                "IS NOT NULL"
            )
            _available[key] = bool(cursor.fetchone()[0])
    return _available[key]


def rollups_forget() -> None:
    """Ask again on the next read (tests that build or drop the aggregates)."""
    _available.clear()


def serves(bucket: str) -> bool:
    """Whether reads of `bucket` buckets come from the aggregates here: hour and day buckets,
    in UTC (the aggregates' buckets are UTC hours and days; Trunc* follows the current time
    zone)."""
    return (
        bucket in TIERS
        and timezone.get_current_timezone_name() in {"UTC", "Etc/UTC"}
        and rollups_available()
    )


# --- Reading -------------------------------------------------------------------------------------


def pieces(
    start: datetime, end: datetime, views: Sequence[str]
) -> list[tuple[str | None, datetime, datetime]]:
    """[start, end) split into (view, lo, hi): whole buckets of the coarsest view from it, what
    is left from the finer ones, and the partial hours at the edges from the raw table (None)."""
    if start >= end:
        return []
    if not views:
        return [(None, start, end)]
    view, finer = views[0], views[1:]
    width = interval(VIEWS[view].bucket)
    lo, hi = ceil_to(start, width), floor_to(end, width)
    if lo >= hi:
        return pieces(start, end, finer)
    return [*pieces(start, lo, finer), (view, lo, hi), *pieces(hi, end, finer)]


def _piece_sql(view: str | None, out: str, signals: Sequence[str], node_filter: str) -> str:
    """SELECT of one piece: node, output bucket, points and per signal avg/min/max/count."""
    width = f"INTERVAL '1 {out}'"
    if view is None:
        columns = ", ".join(f"avg({s}), min({s}), max({s}), count({s})" for s in signals)
        return (
            f"SELECT node_id, time_bucket({width}, time) AS b, count(*) AS points, {columns} "
            f"FROM {TABLE} WHERE {node_filter} AND time >= %s AND time < %s GROUP BY 1, 2"
        )
    columns = ", ".join(f"{s}_avg, {s}_min, {s}_max, {s}_count" for s in signals)
    return (
        f"SELECT node_id, time_bucket({width}, bucket) AS b, points, {columns} "
        f"FROM {view} WHERE {node_filter} AND bucket >= %s AND bucket < %s"
    )


def rollup_buckets(
    *,
    node_id: int | None,
    start: datetime,
    end: datetime,
    bucket: str,
    signals: Sequence[str] = ROLLUP_SIGNALS,
    node_ids: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """Per node and `bucket` ('hour' or 'day') in [start, end): `points` and per signal
    `<s>_avg`, `<s>_min`, `<s>_max`, `<s>_count`, ordered by node and bucket; all nodes when
    `node_id` is None (or those of `node_ids`). One query; needs the aggregates
    (rollups_available())."""
    unknown = set(signals) - set(ROLLUP_SIGNALS)
    if unknown or bucket not in TIERS:
        raise ValueError(f"the aggregates hold no {sorted(unknown) or bucket}")
    node_filter = "TRUE"
    node_params: list[Any] = []
    if node_id is not None:
        node_filter, node_params = "node_id = %s", [node_id]
    elif node_ids is not None:
        node_filter, node_params = "node_id = ANY(%s)", [list(node_ids)]
    parts: list[str] = []
    params: list[Any] = []
    for view, lo, hi in pieces(start, end, TIERS[bucket]):
        parts.append(_piece_sql(view, bucket, signals, node_filter))
        params.extend([*node_params, lo, hi])
    if not parts:
        return []
    # Column names of the union come from its first SELECT: name them positionally.
    names = ["points"] + [f"{s}_{k}" for s in signals for k in ("avg", "min", "max", "count")]
    inner = " UNION ALL ".join(parts)
    if interval(VIEWS[TIERS[bucket][-1]].bucket) == WIDTHS[bucket]:
        # Output buckets as fine as the finest view: no two pieces share one (they split
        # [start, end) on its boundaries), so each row is final, its average the view's own.
        sql = f"{inner} ORDER BY 1, 2"
    else:
        sql = _combined_sql(inner, len(signals))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        {"node_id": row[0], "bucket": row[1], **dict(zip(names, row[2:], strict=True))}
        for row in rows
    ]


def _combined_sql(inner: str, signals: int) -> str:
    """The pieces' rows merged per node and output bucket: averages weighted by counts."""
    combined = []
    for index in range(signals):
        a, lo_, hi_, n = (f"c{4 + 4 * index + k}" for k in range(4))
        combined.append(
            f"sum({a} * {n}) / nullif(sum({n}), 0), min({lo_}), max({hi_}), sum({n})::bigint"
        )
    aliases = ", ".join(f"c{i}" for i in range(1, 4 + 4 * signals))
    return (
        f"SELECT c1, c2, sum(c3)::bigint, {', '.join(combined)} "
        f"FROM ({inner}) AS piece ({aliases}) GROUP BY c1, c2 ORDER BY c1, c2"
    )


# --- Late data -----------------------------------------------------------------------------------


def late_points_note(*, times: Iterable[datetime], now: datetime) -> bool:
    """Called by ingest with the times it just stored: when some are older than LATE_AFTER and
    the aggregates exist, note their hours for late_ranges_refresh. One dict lookup elsewhere."""
    if not rollups_available():
        return False
    times = list(times)
    if not times:
        return False
    oldest = min(times)
    if oldest >= now - LATE_AFTER:
        return False
    from apps.telemetry.models import TelemetryLateRange

    TelemetryLateRange.objects.bulk_create(
        [TelemetryLateRange(start=floor_to(oldest, HOUR), end=floor_to(max(times), HOUR) + HOUR)],
        ignore_conflicts=True,  # the same hours noted by an earlier batch
    )
    return True


def history_note(*, connection: Any, model: Any) -> bool:
    """Migration 0003: note every stored hour for late_ranges_refresh. The aggregates are
    created WITH NO DATA and their policy materializes only the last 7 days, so on a database
    that already held telemetry (one moved onto TimescaleDB later) older buckets would stay
    empty below the watermark; the beat task backfills them after the migration, not inside it."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT to_regclass('{HOURLY}') IS NOT NULL AND to_regclass('{DAILY}') IS NOT NULL"
        )
        if not cursor.fetchone()[0]:
            return False
        cursor.execute(f"SELECT min(time), max(time) FROM {TABLE}")
        oldest, newest = cursor.fetchone()
    if oldest is None:
        return False
    model.objects.using(connection.alias).bulk_create(
        [model(start=floor_to(oldest, HOUR), end=floor_to(newest, HOUR) + HOUR)],
        ignore_conflicts=True,
    )
    return True


def merge(ranges: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def refresh_windows(
    ranges: Iterable[tuple[datetime, datetime]], rollup: Rollup, *, now: datetime
) -> list[tuple[datetime, datetime]]:
    """The windows to refresh `rollup` over for these late ranges: widened to whole buckets
    (refresh_continuous_aggregate refreshes only buckets wholly inside its window) and cut at
    the policy's end (now - end_offset, whole buckets): newer buckets are not materialized yet,
    so real-time aggregation already shows their late points, and refreshing them would
    materialize buckets still being written."""
    width = interval(rollup.bucket)
    cap = floor_to(now - interval(rollup.end_offset), width)
    windows = []
    for lo, hi in merge(ranges):
        lo, hi = floor_to(lo, width), min(ceil_to(hi, width), cap)
        if lo < hi:
            windows.append((lo, hi))
    return merge(windows)


REFRESH_SQL = "CALL refresh_continuous_aggregate(%s, %s::timestamptz, %s::timestamptz)"


def late_ranges_refresh(*, now: datetime | None = None) -> list[tuple[str, datetime, datetime]]:
    """Refresh the aggregates over the noted late ranges and forget those ranges. Returns the
    calls made. Must run outside any transaction (refresh_continuous_aggregate refuses to run in
    one): Celery tasks run in autocommit. No-op without the aggregates."""
    if not rollups_available():
        return []
    if connection.in_atomic_block:
        raise RuntimeError("refresh_continuous_aggregate cannot run inside a transaction")
    from apps.telemetry.models import TelemetryLateRange

    now = now or timezone.now()
    calls: list[tuple[str, datetime, datetime]] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [REFRESH_LOCK_KEY])
        if not cursor.fetchone()[0]:
            return calls  # another run is at it
        try:
            noted = list(TelemetryLateRange.objects.values_list("pk", "start", "end"))
            ranges = [(start, end) for _, start, end in noted]
            for rollup in ROLLUPS:
                for lo, hi in refresh_windows(ranges, rollup, now=now):
                    cursor.execute(REFRESH_SQL, [rollup.view, lo, hi])
                    calls.append((rollup.view, lo, hi))
            # Only what was read: ranges noted meanwhile wait for the next run.
            TelemetryLateRange.objects.filter(pk__in=[pk for pk, _, _ in noted]).delete()
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [REFRESH_LOCK_KEY])
    if calls:
        logger.info("Refreshed continuous aggregates over late telemetry: %s", calls)
    return calls

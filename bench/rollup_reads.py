"""Hourly buckets of one node over 30 days: the raw GROUP BY (plain PostgreSQL, what
point_buckets does without aggregates) against the read from continuous-aggregate stand-ins
(what it does on TimescaleDB), in the same run, on the same rows.

    .venv/bin/python -m bench.rollup_reads [--days 30] [--every-s 1] [--repeat 20] [--keep-db]

One node, one point every `--every-s` seconds for `--days` days (30 x 86,400 = 2.6 M rows by
default), inserted by the server (generate_series) into a database of its own
(imewe_bench_rollups, plain layout: primary key + BRIN). Both reads go through
apps.telemetry.selectors.point_buckets, the function the API's buckets endpoint and energy's
opportunities call, over [now - days, now) with minutes on both edges (the partial hours are
read raw in both cases). The aggregates are the test stand-ins (tests/telemetry/rollup_standin.py:
tables built from rollup_view_sql()'s SELECT, indexed on (node_id, bucket) as TimescaleDB
indexes a continuous aggregate, under a real-time union view), materialized up to an hour ago,
as the refresh policy leaves them. A real TimescaleDB adds its own planning of the real-time
union; the figure is what the stored rows cost to read.

Prints the median and p95 of each and the goal (<= 10 ms from the aggregate), plus the aggregate
read over whole hours (no partial hours to read raw: what is left is the aggregate's rows and the
real-time part above the watermark).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bench.harness import BenchDatabase

DATABASE = BenchDatabase("imewe_bench_rollups")
GOAL_MS = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--every-s", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    DATABASE.run_in_process(lambda: run(args), keep=args.keep_db)


def timed(
    fn: Callable[[], list[dict[str, Any]]], repeat: int
) -> tuple[list[float], list[dict[str, Any]]]:
    result = fn()  # warm: plans, caches
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times, result


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(times):7.2f} ms   p95 {p95:7.2f} ms"


def run(args: argparse.Namespace) -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.db import connection
    from django.utils import timezone

    from apps.telemetry import rollups
    from apps.telemetry.selectors import point_buckets
    from bench.ingest import devices_create
    from tests.telemetry import rollup_standin

    (device,) = devices_create(1)
    now = timezone.now().replace(microsecond=0)
    first = now - timedelta(days=args.days)
    print(f"rows: {args.days} days, one point every {args.every_s} s, node {device.node_id}")
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO telemetry_point (node_id, time, temperature_c, power_kw, spindle_rpm, "
            "vibration_mm_s, extra) "
            "SELECT %s, t, 40 + (extract(epoch FROM t)::bigint %% 97) * 0.05, "
            "5.5 + (extract(epoch FROM t)::bigint %% 11) * 0.1, 9000, 1.2, '{}' "
            "FROM generate_series(%s::timestamptz, %s::timestamptz, %s * INTERVAL '1 second') t",
            [device.node_id, first, now, args.every_s],
        )
        rows = cursor.rowcount
        cursor.execute("VACUUM ANALYZE telemetry_point")
    print(f"  inserted {rows:,} rows in {time.perf_counter() - t0:.1f} s")

    start = first + timedelta(minutes=7)  # ragged edges, as a user's range has
    end = now - timedelta(minutes=3)

    def read() -> list[dict[str, Any]]:
        return point_buckets(
            node_id=device.node_id, start=start, end=end, bucket="hour", signal="power_kw"
        )

    rollups.rollups_forget()
    assert not rollups.serves("hour")
    raw_times, raw_rows = timed(read, args.repeat)

    rollup_standin.install()
    with connection.cursor() as cursor:
        for rollup in rollup_standin.storage_layout.ROLLUPS:
            cursor.execute(f"CREATE INDEX ON standin_mat_{rollup.view} (node_id, bucket DESC)")
    t0 = time.perf_counter()
    for rollup in rollup_standin.storage_layout.ROLLUPS:
        rollup_standin.materialize(rollup.view, first - timedelta(days=1), now - timedelta(hours=1))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE standin_mat_telemetry_hourly")
        cursor.execute("ANALYZE standin_mat_telemetry_daily")
    print(f"  materialized the stand-in aggregates in {time.perf_counter() - t0:.1f} s")
    assert rollups.serves("hour")
    agg_times, agg_rows = timed(read, args.repeat)
    whole_start, whole_end = (
        rollups.ceil_to(start, rollups.HOUR),
        rollups.ceil_to(end, rollups.HOUR),
    )

    def read_whole_hours() -> list[dict[str, Any]]:
        return point_buckets(
            node_id=device.node_id,
            start=whole_start,
            end=whole_end,
            bucket="hour",
            signal="power_kw",
        )

    whole_times, _ = timed(read_whole_hours, args.repeat)

    same = len(raw_rows) == len(agg_rows) and all(
        r["bucket"] == a["bucket"]
        and r["count"] == a["count"]
        and abs((r["avg"] or 0) - (a["avg"] or 0)) < 1e-9
        for r, a in zip(raw_rows, agg_rows, strict=True)
    )
    print(
        f"\n{args.days}-day hourly buckets of one node, {len(raw_rows)} buckets, "
        f"{args.repeat} reads each (same run):"
    )
    print(f"  raw GROUP BY (plain PostgreSQL)   {summary(raw_times)}")
    print(f"  from the aggregates (stand-ins)   {summary(agg_times)}")
    print(f"    same, range on whole hours      {summary(whole_times)}  (no raw edges)")
    median = statistics.median(agg_times)
    verdict = "PASS" if median <= GOAL_MS else "MISS"
    print(f"  same buckets and figures: {'yes' if same else 'NO'}")
    print(
        f"  goal: <= {GOAL_MS:.0f} ms from the aggregate: {verdict} ({median:.2f} ms), "
        f"{statistics.median(raw_times) / median:.0f}x faster than raw"
    )


if __name__ == "__main__":
    main()

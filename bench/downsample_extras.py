"""What averaging the `extra` signals costs a downsampled read: the maintenance scoring's two reads
(24 h in 2,880 slices; 14 days in 2,016) of a node whose points carry three extra signals, against
the same reads of a node whose points carry none, in the same run, on the same number of rows.

    .venv/bin/python -m bench.downsample_extras [--days 14] [--every-s 10] [--repeat 5] [--keep-db]

Two nodes, one point every `--every-s` seconds for `--days` days each (14 x 8,640 = 121k rows per
node by default), inserted by the server (generate_series) into a database of its own
(imewe_bench_downsample, plain layout). One node's points carry `{"bearing_temp_c": <number>,
"coolant_flow_l_min": <number>, "mode": "cutting"|"idle"}`, the other's `{}`. Both are read
through apps.telemetry.selectors.point_range_downsampled, the function the scoring, the training
and the points API call. Prints the median of each read and the ratio with extras / without.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

from bench.harness import BenchDatabase

DATABASE = BenchDatabase("imewe_bench_downsample")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--every-s", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    DATABASE.run_in_process(lambda: run(args), keep=args.keep_db)


def run(args: argparse.Namespace) -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.db import connection
    from django.utils import timezone

    from apps.telemetry.selectors import point_range_downsampled
    from bench.ingest import devices_create

    plain, rich = devices_create(2)
    now = timezone.now().replace(microsecond=0)
    first = now - timedelta(days=args.days)
    extra = (
        "jsonb_build_object('bearing_temp_c', 45 + (extract(epoch FROM t)::bigint % 13) * 0.1, "
        "'coolant_flow_l_min', 3 + (extract(epoch FROM t)::bigint % 7) * 0.05, "
        "'mode', CASE WHEN extract(epoch FROM t)::bigint % 300 < 180 THEN 'cutting' "
        "ELSE 'idle' END)"
    )
    t0 = time.perf_counter()
    rows = 0
    with connection.cursor() as cursor:
        for node_id, extra_sql in ((plain.node_id, "'{}'::jsonb"), (rich.node_id, extra)):
            cursor.execute(
                "INSERT INTO telemetry_point (node_id, time, temperature_c, power_kw, "
                "spindle_rpm, vibration_mm_s, extra) "
                "SELECT %s, t, 40 + (extract(epoch FROM t)::bigint %% 97) * 0.05, "
                "5.5 + (extract(epoch FROM t)::bigint %% 11) * 0.1, 9000, 1.2, "
                + extra_sql.replace("%", "%%")
                + " FROM generate_series(%s::timestamptz, %s::timestamptz, "
                "%s * INTERVAL '1 second') t",
                [node_id, first, now, args.every_s],
            )
            rows += cursor.rowcount
        cursor.execute("VACUUM ANALYZE telemetry_point")
    print(f"  inserted {rows:,} rows (two nodes) in {time.perf_counter() - t0:.1f} s")

    reads = [("24 h in 2,880 slices", timedelta(hours=24), 2880)]
    if args.days >= 14:
        reads.append(("14 days in 2,016 slices", timedelta(days=14), 2016))
    print(f"\nmedian of {args.repeat} reads each (same run):")
    for label, span, slices in reads:
        medians = {}
        for name, node_id in (("no extras", plain.node_id), ("3 extras", rich.node_id)):

            def read(node_id: int = node_id, span: timedelta = span, slices: int = slices):
                return point_range_downsampled(
                    node_id=node_id, start=now - span, end=now, max_points=slices
                )

            result = read()
            times = []
            for _ in range(args.repeat):
                t1 = time.perf_counter()
                result = read()
                times.append((time.perf_counter() - t1) * 1000)
            medians[name] = statistics.median(times)
            keys = sorted({k for row in result for k in row["extra"]})
            print(
                f"  {label:24} {name:10} {medians[name]:8.1f} ms  {len(result):,} slices, "
                f"extra keys {keys}"
            )
        print(f"  {'':24} ratio      {medians['3 extras'] / medians['no extras']:8.2f}x")


if __name__ == "__main__":
    main()

"""TimescaleDB-shaped stand-ins for the continuous aggregates, on plain PostgreSQL (CI and this
machine have no TimescaleDB), with TimescaleDB's names, so the code under test sends the SQL it
sends in production:

- `time_bucket(interval, timestamptz)`: date_bin from time_bucket's origin (2000-01-03 UTC).
- `telemetry_hourly` / `telemetry_daily`: views with real-time aggregation's shape. Each holds the
  rows of a table `standin_mat_<view>` (built from rollup_view_sql()'s own SELECT) for buckets
  below a watermark, and aggregates the raw rows from the watermark on. Like TimescaleDB, a
  point stored late into a materialized bucket stays invisible until that bucket is refreshed.
- `refresh_continuous_aggregate(regclass, timestamptz, timestamptz)`: a procedure that records
  its call, re-materializes only the buckets wholly inside the window (as TimescaleDB does),
  raises TimescaleDB's "refresh window too small" when there are none, moves the watermark and
  ends with COMMIT, so that, like TimescaleDB's, it fails inside a transaction block.
- `standin_materialize(view, lo, hi)`: what the refresh policy does, for tests to call inside
  their transaction.

What only a real TimescaleDB can show: the planner's handling of its real-time union (chunk
exclusion on the watermark), invalidation-log bookkeeping (a refresh re-reads only invalidated
ranges; here it always recomputes), refresh of compressed chunks, and the background policy.
"""

from __future__ import annotations

import re
from datetime import datetime

from django.db import connection

from apps.telemetry import rollups, storage_layout

SELECT = re.compile(r"\bAS\n(SELECT .*)\nWITH NO DATA$", re.S)

FUNCTIONS_SQL = r"""
CREATE FUNCTION time_bucket(bucket_width interval, ts timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT date_bin(bucket_width, ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') $$;

CREATE TABLE standin_cagg (
    view text PRIMARY KEY, width interval NOT NULL, query text NOT NULL,
    watermark timestamptz NOT NULL DEFAULT '-infinity');
CREATE TABLE standin_cagg_calls (
    n serial PRIMARY KEY, view text NOT NULL, window_start timestamptz, window_end timestamptz);

CREATE FUNCTION standin_watermark(cagg text) RETURNS timestamptz LANGUAGE sql STABLE
AS $$ SELECT watermark FROM standin_cagg WHERE view = cagg $$;

CREATE FUNCTION standin_materialize(cagg text, window_start timestamptz, window_end timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    c standin_cagg;
    lo timestamptz;
    hi timestamptz;
BEGIN
    SELECT * INTO c FROM standin_cagg WHERE view = cagg;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation "%" is not a continuous aggregate', cagg;
    END IF;
    lo := time_bucket(c.width, window_start);
    IF lo < window_start THEN
        lo := lo + c.width;
    END IF;
    hi := time_bucket(c.width, window_end);
    IF lo >= hi THEN
        RAISE EXCEPTION 'refresh window too small';
    END IF;
    EXECUTE format('DELETE FROM %I WHERE bucket >= $1 AND bucket < $2', 'standin_mat_' || cagg)
        USING lo, hi;
    EXECUTE format('INSERT INTO %I SELECT * FROM (%s) q WHERE bucket >= $1 AND bucket < $2',
                   'standin_mat_' || cagg, c.query) USING lo, hi;
    UPDATE standin_cagg SET watermark = greatest(watermark, hi) WHERE view = cagg;
END $$;

CREATE PROCEDURE refresh_continuous_aggregate(
    continuous_aggregate regclass, window_start timestamptz, window_end timestamptz)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO standin_cagg_calls (view, window_start, window_end)
    VALUES (continuous_aggregate::text, window_start, window_end);
    PERFORM standin_materialize(continuous_aggregate::text, window_start, window_end);
    COMMIT;  -- fails inside a transaction block, as TimescaleDB's refresh does
END $$;
"""

DROP_SQL = """
DROP VIEW IF EXISTS telemetry_hourly, telemetry_daily;
DROP TABLE IF EXISTS standin_mat_telemetry_hourly, standin_mat_telemetry_daily, standin_cagg,
    standin_cagg_calls;
DROP PROCEDURE IF EXISTS refresh_continuous_aggregate(regclass, timestamptz, timestamptz);
DROP FUNCTION IF EXISTS standin_materialize(text, timestamptz, timestamptz);
DROP FUNCTION IF EXISTS standin_watermark(text);
DROP FUNCTION IF EXISTS time_bucket(interval, timestamptz);
"""


def view_select(rollup: storage_layout.Rollup) -> str:
    """The SELECT of the continuous aggregate migration 0002 creates, verbatim."""
    sql = storage_layout.rollup_view_sql(rollup)
    match = SELECT.search(sql)
    assert match, sql
    return match.group(1)


def install() -> None:
    with connection.cursor() as cursor:
        cursor.execute(DROP_SQL)
        cursor.execute(FUNCTIONS_SQL)
        for rollup in storage_layout.ROLLUPS:
            query = view_select(rollup)
            mat = f"standin_mat_{rollup.view}"
            cursor.execute(f"CREATE TABLE {mat} AS {query} WITH NO DATA")
            cursor.execute(
                "INSERT INTO standin_cagg (view, width, query) VALUES (%s, %s::interval, %s)",
                [rollup.view, rollup.bucket, query],
            )
            # Real-time aggregation: materialized below the watermark, raw rows from it on.
            live = query.replace(
                f"FROM {storage_layout.TABLE}\n",
                f"FROM {storage_layout.TABLE} WHERE time >= standin_watermark('{rollup.view}')\n",
            )
            assert live != query
            cursor.execute(
                f"CREATE VIEW {rollup.view} AS "
                f"SELECT * FROM {mat} WHERE bucket < standin_watermark('{rollup.view}') "
                f"UNION ALL {live}"
            )
    rollups.rollups_forget()


def uninstall() -> None:
    with connection.cursor() as cursor:
        cursor.execute(DROP_SQL)
    rollups.rollups_forget()


def materialize(view: str, lo: datetime, hi: datetime) -> None:
    """What the refresh policy does for [lo, hi)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT standin_materialize(%s, %s, %s)", [view, lo, hi])


def refresh_calls() -> list[tuple[str, datetime, datetime]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT view, window_start, window_end FROM standin_cagg_calls ORDER BY n")
        return list(cursor.fetchall())


def materialized_rows(view: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM standin_mat_{view}")
        return int(cursor.fetchone()[0])

"""Every statement the TimescaleDB branch of migration 0002 runs, run for real on the test's plain
PostgreSQL (CI has no TimescaleDB).

In a throw-away schema (tsdb_standin, first on the search_path, rolled back with the test's
transaction) we define SQL stand-ins with TimescaleDB's names and parameter names:
`time_bucket(interval, timestamptz)` as `date_bin(..., TIMESTAMPTZ '2000-01-03 UTC')` (the same
origin, so the same buckets), and `create_hypertable`, `add_compression_policy`,
`add_retention_policy`, `add_continuous_aggregate_policy`, their `remove_*`, `show_chunks`,
`decompress_chunk` and the `timescaledb_information.hypertables`/`jobs` views, which check what
the real ones check (a second call without if_not_exists fails, a non-empty table needs
migrate_data, unique indexes must hold the time column, compression must be on before its
policy...) and record their arguments. The statements then run against a copy of
telemetry_point holding real rows, through a cursor that rewrites only what plain PostgreSQL
cannot run:
- `WITH (timescaledb.continuous, ...)` on CREATE MATERIALIZED VIEW is dropped (plain
  PostgreSQL rejects the parameter namespace); `WITH NO DATA` is kept, and the test runs
  REFRESH MATERIALIZED VIEW where TimescaleDB's refresh policy would materialize;
- `ALTER TABLE ... SET (timescaledb.compress...)` becomes a call to a recording stand-in (plain
  PostgreSQL parses it but rejects the parameter namespace);
- `timescaledb_information.` becomes `tsdb_standin.`, and CREATE EXTENSION is recorded.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from apps.telemetry import storage_layout
from apps.telemetry.models import TelemetryPoint
from apps.telemetry.selectors import SIGNALS, point_buckets, point_range
from tests.fixtures.fleet import Fleet, make_node

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (CI sets DATABASE_URL)"
    ),
    pytest.mark.django_db,
]

STANDIN_SQL = r"""
CREATE SCHEMA tsdb_standin;
CREATE TABLE tsdb_standin.calls (n serial PRIMARY KEY, fn text NOT NULL, args jsonb NOT NULL);
CREATE TABLE tsdb_standin.extension_state (name text PRIMARY KEY);
CREATE TABLE tsdb_standin.hypertable_state (
    relid regclass PRIMARY KEY, time_column name, chunk_time_interval interval,
    compression_enabled boolean NOT NULL DEFAULT false, compress_options jsonb);
CREATE TABLE tsdb_standin.job_state (
    id serial PRIMARY KEY, proc text NOT NULL, relid oid NOT NULL, config jsonb NOT NULL);

CREATE VIEW tsdb_standin.hypertables AS
    SELECT n.nspname AS hypertable_schema, c.relname AS hypertable_name, h.compression_enabled
    FROM tsdb_standin.hypertable_state h
    JOIN pg_class c ON c.oid = h.relid JOIN pg_namespace n ON n.oid = c.relnamespace;
-- Jobs of a dropped relation vanish, as TimescaleDB drops a cagg's policy with the cagg.
CREATE VIEW tsdb_standin.jobs AS
    SELECT j.id AS job_id, j.proc AS proc_name, c.relname AS hypertable_name, j.config
    FROM tsdb_standin.job_state j JOIN pg_class c ON c.oid = j.relid;

CREATE FUNCTION tsdb_standin.time_bucket(bucket_width interval, ts timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT date_bin(bucket_width, ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') $$;

CREATE FUNCTION tsdb_standin.record(fn text, args jsonb) RETURNS void LANGUAGE sql
AS $$ INSERT INTO tsdb_standin.calls (fn, args) VALUES (fn, args) $$;

CREATE FUNCTION tsdb_standin.create_extension(extname text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tsdb_standin.record('create_extension', jsonb_build_object('name', extname));
    INSERT INTO tsdb_standin.extension_state VALUES (extname) ON CONFLICT DO NOTHING;
END $$;

CREATE FUNCTION tsdb_standin.require_hypertable(rel regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tsdb_standin.extension_state WHERE name = 'timescaledb') THEN
        RAISE EXCEPTION 'function does not exist (CREATE EXTENSION timescaledb has not run)';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tsdb_standin.hypertable_state WHERE relid = rel) THEN
        RAISE EXCEPTION 'table "%" is not a hypertable', rel;
    END IF;
END $$;

CREATE FUNCTION tsdb_standin.create_hypertable(
    relation regclass, time_column_name name, partitioning_column name DEFAULT NULL,
    number_partitions integer DEFAULT NULL, associated_schema_name name DEFAULT NULL,
    associated_table_prefix name DEFAULT NULL, chunk_time_interval interval DEFAULT NULL,
    create_default_indexes boolean DEFAULT true, if_not_exists boolean DEFAULT false,
    partitioning_func regproc DEFAULT NULL, migrate_data boolean DEFAULT false,
    time_partitioning_func regproc DEFAULT NULL)
RETURNS TABLE (hypertable_id integer, schema_name name, table_name name, created boolean)
LANGUAGE plpgsql AS $$
DECLARE
    time_attnum smallint;
    has_rows boolean;
BEGIN
    PERFORM tsdb_standin.record('create_hypertable', jsonb_build_object(
        'relation', relation::text, 'time_column_name', time_column_name,
        'chunk_time_interval', chunk_time_interval::text, 'if_not_exists', if_not_exists,
        'migrate_data', migrate_data));
    IF NOT EXISTS (SELECT 1 FROM tsdb_standin.extension_state WHERE name = 'timescaledb') THEN
        RAISE EXCEPTION 'function create_hypertable does not exist';
    END IF;
    IF EXISTS (SELECT 1 FROM tsdb_standin.hypertable_state h WHERE h.relid = relation) THEN
        IF NOT if_not_exists THEN
            RAISE EXCEPTION 'table "%" is already a hypertable', relation;
        END IF;
        RAISE NOTICE 'table "%" is already a hypertable, skipping', relation;
        RETURN QUERY SELECT 1, NULL::name, NULL::name, false;
        RETURN;
    END IF;
    SELECT a.attnum INTO time_attnum FROM pg_attribute a
    WHERE a.attrelid = relation AND a.attname = time_column_name AND NOT a.attisdropped
      AND a.atttypid = 'timestamptz'::regtype;
    IF time_attnum IS NULL THEN
        RAISE EXCEPTION 'column "%" does not exist or is not a timestamptz', time_column_name;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = relation AND i.indisunique
               AND NOT time_attnum = ANY (i.indkey::int2[])) THEN
        RAISE EXCEPTION 'cannot create a unique index without the column "%"', time_column_name;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', relation) INTO has_rows;
    IF has_rows AND NOT migrate_data THEN
        RAISE EXCEPTION 'table "%" is not empty', relation;
    END IF;
    INSERT INTO tsdb_standin.hypertable_state (relid, time_column, chunk_time_interval)
    VALUES (relation, time_column_name, chunk_time_interval);
    RETURN QUERY SELECT 1, NULL::name, NULL::name, true;
END $$;

CREATE FUNCTION tsdb_standin.alter_table_set(relation regclass, options jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    col text;
BEGIN
    PERFORM tsdb_standin.record('alter_table_set',
                                jsonb_build_object('relation', relation::text) || options);
    PERFORM tsdb_standin.require_hypertable(relation);
    IF options->>'timescaledb.compress' = 'false' THEN
        IF EXISTS (SELECT 1 FROM tsdb_standin.job_state
                   WHERE relid = relation AND proc = 'policy_compression') THEN
            RAISE EXCEPTION 'cannot disable compression on hypertable with compression policy';
        END IF;
        UPDATE tsdb_standin.hypertable_state
        SET compression_enabled = false, compress_options = NULL WHERE relid = relation;
        RETURN;
    END IF;
    FOR col IN SELECT options->>k FROM unnest(ARRAY['timescaledb.compress_segmentby',
                                                     'timescaledb.compress_orderby']) k
    LOOP
        IF col IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM pg_attribute WHERE attrelid = relation AND attname = col) THEN
            RAISE EXCEPTION 'column "%" does not exist', col;
        END IF;
    END LOOP;
    UPDATE tsdb_standin.hypertable_state
    SET compression_enabled = true, compress_options = options WHERE relid = relation;
END $$;

CREATE FUNCTION tsdb_standin.add_job(
    proc text, rel regclass, config jsonb, if_not_exists boolean) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    existing tsdb_standin.job_state;
    new_id integer;
BEGIN
    SELECT * INTO existing FROM tsdb_standin.job_state WHERE job_state.proc = add_job.proc
        AND relid = rel;
    IF FOUND THEN
        IF NOT if_not_exists THEN
            RAISE EXCEPTION '% already exists for "%"', proc, rel;
        END IF;
        IF existing.config IS DISTINCT FROM config THEN
            RAISE WARNING '% already exists for "%" with different arguments', proc, rel;
        END IF;
        RETURN existing.id;
    END IF;
    INSERT INTO tsdb_standin.job_state (proc, relid, config) VALUES (proc, rel, config)
    RETURNING id INTO new_id;
    RETURN new_id;
END $$;

CREATE FUNCTION tsdb_standin.add_compression_policy(
    hypertable regclass, compress_after interval DEFAULT NULL,
    if_not_exists boolean DEFAULT false, schedule_interval interval DEFAULT NULL,
    initial_start timestamptz DEFAULT NULL, timezone text DEFAULT NULL,
    compress_created_before interval DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tsdb_standin.record('add_compression_policy', jsonb_build_object(
        'hypertable', hypertable::text, 'compress_after', compress_after::text,
        'if_not_exists', if_not_exists));
    PERFORM tsdb_standin.require_hypertable(hypertable);
    IF NOT (SELECT compression_enabled FROM tsdb_standin.hypertable_state
            WHERE relid = hypertable) THEN
        RAISE EXCEPTION 'compression not enabled on hypertable "%"', hypertable;
    END IF;
    RETURN tsdb_standin.add_job('policy_compression', hypertable,
        jsonb_build_object('compress_after', compress_after::text), if_not_exists);
END $$;

CREATE FUNCTION tsdb_standin.add_retention_policy(
    relation regclass, drop_after interval DEFAULT NULL, if_not_exists boolean DEFAULT false,
    schedule_interval interval DEFAULT NULL, initial_start timestamptz DEFAULT NULL,
    timezone text DEFAULT NULL, drop_created_before interval DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tsdb_standin.record('add_retention_policy', jsonb_build_object(
        'relation', relation::text, 'drop_after', drop_after::text,
        'if_not_exists', if_not_exists));
    PERFORM tsdb_standin.require_hypertable(relation);
    RETURN tsdb_standin.add_job('policy_retention', relation,
        jsonb_build_object('drop_after', drop_after::text), if_not_exists);
END $$;

CREATE FUNCTION tsdb_standin.add_continuous_aggregate_policy(
    continuous_aggregate regclass, start_offset interval, end_offset interval,
    schedule_interval interval, if_not_exists boolean DEFAULT false,
    initial_start timestamptz DEFAULT NULL, timezone text DEFAULT NULL,
    include_tiered_data boolean DEFAULT NULL, buckets_per_batch integer DEFAULT NULL,
    max_batches_per_execution integer DEFAULT NULL, refresh_newest_first boolean DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tsdb_standin.record('add_continuous_aggregate_policy', jsonb_build_object(
        'continuous_aggregate', continuous_aggregate::text,
        'start_offset', start_offset::text, 'end_offset', end_offset::text,
        'schedule_interval', schedule_interval::text, 'if_not_exists', if_not_exists));
    IF (SELECT relkind FROM pg_class WHERE oid = continuous_aggregate) <> 'm' THEN
        RAISE EXCEPTION 'relation "%" is not a continuous aggregate', continuous_aggregate;
    END IF;
    IF NOT start_offset > end_offset THEN
        RAISE EXCEPTION 'start_offset must be larger than end_offset';
    END IF;
    RETURN tsdb_standin.add_job('policy_refresh_continuous_aggregate', continuous_aggregate,
        jsonb_build_object('start_offset', start_offset::text, 'end_offset', end_offset::text,
                           'schedule_interval', schedule_interval::text), if_not_exists);
END $$;

CREATE FUNCTION tsdb_standin.remove_policy(proc text, rel regclass, if_exists boolean)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tsdb_standin.require_hypertable(rel);
    DELETE FROM tsdb_standin.job_state j WHERE j.proc = remove_policy.proc AND j.relid = rel;
    IF NOT FOUND AND NOT if_exists THEN
        RAISE EXCEPTION '% not found for hypertable "%"', proc, rel;
    END IF;
    RETURN FOUND;
END $$;

CREATE FUNCTION tsdb_standin.remove_retention_policy(
    relation regclass, if_exists boolean DEFAULT false) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tsdb_standin.record('remove_retention_policy', jsonb_build_object(
        'relation', relation::text, 'if_exists', if_exists));
    PERFORM tsdb_standin.remove_policy('policy_retention', relation, if_exists);
END $$;

CREATE FUNCTION tsdb_standin.remove_compression_policy(
    hypertable regclass, if_exists boolean DEFAULT false) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tsdb_standin.record('remove_compression_policy', jsonb_build_object(
        'hypertable', hypertable::text, 'if_exists', if_exists));
    RETURN tsdb_standin.remove_policy('policy_compression', hypertable, if_exists);
END $$;

-- The stand-in hypertable has no chunks of its own: show_chunks returns none.
CREATE FUNCTION tsdb_standin.show_chunks(relation regclass) RETURNS SETOF regclass
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tsdb_standin.record('show_chunks', jsonb_build_object('relation', relation::text));
    PERFORM tsdb_standin.require_hypertable(relation);
END $$;

CREATE FUNCTION tsdb_standin.decompress_chunk(
    uncompressed_chunk regclass, if_compressed boolean DEFAULT true) RETURNS regclass
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tsdb_standin.record('decompress_chunk', jsonb_build_object(
        'chunk', uncompressed_chunk::text, 'if_compressed', if_compressed));
    RETURN uncompressed_chunk;
END $$;
"""

CONTINUOUS_OPTIONS = re.compile(r"\s*WITH \(timescaledb\.continuous[^)]*\)")
ALTER_SET = re.compile(r"^ALTER TABLE (\w+) SET \((timescaledb\..*)\)$", re.S)


class StandinCursor:
    """Runs the branch's statements with only the rewrites the module docstring lists; records
    them; can stop before the n-th, as a crash or a lock timeout half-way would."""

    def __init__(self, cursor: Any, *, stop_before: int | None = None) -> None:
        self.cursor = cursor
        self.stop_before = stop_before
        self.statements: list[str] = []

    def execute(self, sql: str, params: Any = None) -> Any:
        if self.stop_before is not None and len(self.statements) == self.stop_before:
            raise RuntimeError(f"stopped before statement {self.stop_before}")
        self.statements.append(sql)
        return self.cursor.execute(self.rewrite(sql), params)

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    @staticmethod
    def rewrite(sql: str) -> str:
        if sql == "CREATE EXTENSION IF NOT EXISTS timescaledb":
            return "SELECT tsdb_standin.create_extension('timescaledb')"
        altered = ALTER_SET.match(sql)
        if altered:
            options = {}
            for item in altered.group(2).split(","):
                name, _, value = item.partition("=")
                options[name.strip()] = value.strip().strip("'") or "true"
            return (
                f"SELECT tsdb_standin.alter_table_set('{altered.group(1)}', "
                f"'{_json(options)}'::jsonb)"
            )
        sql = CONTINUOUS_OPTIONS.sub("", sql)
        return sql.replace("timescaledb_information.", "tsdb_standin.")


def _json(value: dict[str, str]) -> str:
    return json.dumps(value).replace("'", "''")


def fetch(sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def standin_schema() -> None:
    """A fresh stand-in schema holding a copy of telemetry_point (rows included) as 0001 left
    it: the primary key, no BRIN index."""
    with connection.cursor() as cursor:
        cursor.execute("RESET search_path")
        cursor.execute("DROP SCHEMA IF EXISTS tsdb_standin CASCADE")
        cursor.execute(STANDIN_SQL)
        cursor.execute(
            "CREATE TABLE tsdb_standin.telemetry_point (LIKE telemetry_point INCLUDING ALL)"
        )
        for (name,) in fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'tsdb_standin' "
            "AND tablename = 'telemetry_point' AND indexdef LIKE '%USING brin%'"
        ):
            cursor.execute(f"DROP INDEX tsdb_standin.{name}")
        cursor.execute("INSERT INTO tsdb_standin.telemetry_point SELECT * FROM telemetry_point")
        cursor.execute("SET search_path = tsdb_standin, public")


@pytest.fixture
def standin():
    standin_schema()
    yield
    # The test's transaction is rolled back, search_path included; when a statement failed the
    # transaction is aborted and this is not needed (nor possible).
    with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
        cursor.execute("RESET search_path")


def state() -> dict[str, Any]:
    """Everything the branch can change, to compare runs."""
    return {
        "extensions": fetch("SELECT name FROM tsdb_standin.extension_state ORDER BY 1"),
        "hypertables": fetch(
            "SELECT relid::text, time_column, chunk_time_interval::text, compression_enabled, "
            "compress_options FROM tsdb_standin.hypertable_state ORDER BY 1"
        ),
        "jobs": fetch(
            "SELECT job_id, proc_name, hypertable_name, config FROM tsdb_standin.jobs ORDER BY 1"
        ),
        "views": fetch(
            "SELECT matviewname, definition FROM pg_matviews WHERE schemaname = 'tsdb_standin' "
            "ORDER BY 1"
        ),
        "indexes": fetch(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'tsdb_standin' "
            "AND tablename = 'telemetry_point' ORDER BY 1"
        ),
        "rows": fetch("SELECT count(*) FROM tsdb_standin.telemetry_point"),
    }


def calls(fn: str) -> list[dict[str, Any]]:
    rows = fetch("SELECT args FROM tsdb_standin.calls WHERE fn = %s ORDER BY n", [fn])
    return [json.loads(row[0]) for row in rows]


def forwards() -> StandinCursor:
    with connection.cursor() as cursor:
        runner = StandinCursor(cursor)
        storage_layout.apply_timescale(runner, retention=90)
    return runner


START = datetime(2026, 3, 1, 21, 4, tzinfo=UTC)


@pytest.fixture
def rows(fleet: Fleet):
    """Two nodes, about 30 hours of points every 7 minutes, with signals sometimes missing (the
    counts differ per signal) and one lone point on the second node."""
    mill, lathe = make_node(fleet, name="Mill-A"), make_node(fleet, name="Lathe-B")
    points = []
    for i in range(260):
        points.append(
            TelemetryPoint(
                node=mill,
                time=START + timedelta(minutes=7 * i),
                temperature_c=None if i % 5 == 0 else 20 + (i * 37 % 23) / 3,
                vibration_mm_s=(i * 13 % 17) / 4,
                power_kw=None if i % 3 == 0 else 1.5 + (i % 11),
                spindle_rpm=1000.0 * (i % 7),
                torque_nm=None,
                progress_pct=min(100.0, i / 2.6),
                material_remaining=None if i % 4 else 500.0 - i,
            )
        )
    points.append(TelemetryPoint(node=lathe, time=START + timedelta(hours=2), power_kw=4.0))
    TelemetryPoint.objects.bulk_create(points)
    return [mill.pk, lathe.pk]


def test_timescale_branch_runs_and_calls_each_function_with_the_intended_arguments(standin):
    runner = forwards()
    assert calls("create_extension") == [{"name": "timescaledb"}]
    assert calls("create_hypertable") == [
        {
            "relation": "telemetry_point",
            "time_column_name": "time",
            "chunk_time_interval": "1 day",
            "if_not_exists": True,
            "migrate_data": True,
        }
    ]
    assert calls("alter_table_set") == [
        {
            "relation": "telemetry_point",
            "timescaledb.compress": "true",
            "timescaledb.compress_segmentby": "node_id",
            "timescaledb.compress_orderby": "time",
        }
    ]
    assert calls("add_compression_policy") == [
        {"hypertable": "telemetry_point", "compress_after": "7 days", "if_not_exists": True}
    ]
    assert calls("add_retention_policy") == [
        {"relation": "telemetry_point", "drop_after": "90 days", "if_not_exists": True}
    ]
    assert calls("add_continuous_aggregate_policy") == [
        {
            "continuous_aggregate": "telemetry_hourly",
            "start_offset": "7 days",
            "end_offset": "01:00:00",
            "schedule_interval": "01:00:00",
            "if_not_exists": True,
        },
        {
            "continuous_aggregate": "telemetry_daily",
            "start_offset": "7 days",
            "end_offset": "1 day",
            "schedule_interval": "01:00:00",
            "if_not_exists": True,
        },
    ]
    # The real statements ask for real-time aggregation and materialize later, by policy.
    views = [s for s in runner.statements if s.startswith("CREATE MATERIALIZED VIEW")]
    assert len(views) == 2
    for sql in views:
        assert "WITH (timescaledb.continuous, timescaledb.materialized_only = false)" in sql
        assert sql.endswith("WITH NO DATA")
        assert "INTERVAL 'hour'" not in sql and "INTERVAL 'day'" not in sql


def test_running_the_branch_twice_changes_nothing(standin):
    forwards()
    first = state()
    assert first["jobs"] and first["views"] and first["hypertables"]
    forwards()
    assert state() == first


def test_a_run_stopped_half_way_is_completed_by_the_next(standin):
    statements = len(forwards().statements)
    complete = state()
    for stop in range(statements):
        standin_schema()
        with connection.cursor() as cursor, pytest.raises(RuntimeError, match="stopped"):
            storage_layout.apply_timescale(StandinCursor(cursor, stop_before=stop), retention=90)
        forwards()
        assert state() == complete, f"after a run stopped before statement {stop}"


def test_the_standins_refuse_what_timescaledb_refuses(standin):
    # Without this the idempotency checks above could not fail.
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO telemetry_point (node_id, time, extra) VALUES (1, now(), '{}')")
        cursor.execute("SELECT tsdb_standin.create_extension('timescaledb')")
        with pytest.raises(DatabaseError, match="not empty"), transaction.atomic():
            cursor.execute("SELECT create_hypertable('telemetry_point', 'time')")
    forwards()
    refused = {
        "already a hypertable": "SELECT create_hypertable('telemetry_point', 'time', "
        "migrate_data => true)",
        "policy_compression already exists": "SELECT add_compression_policy("
        "'telemetry_point', compress_after => INTERVAL '7 days')",
        "policy_retention already exists": "SELECT add_retention_policy('telemetry_point', "
        "drop_after => INTERVAL '90 days')",
        "policy_refresh_continuous_aggregate already exists": "SELECT "
        "add_continuous_aggregate_policy('telemetry_hourly', start_offset => INTERVAL '7 days', "
        "end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour')",
        "already exists": "CREATE MATERIALIZED VIEW telemetry_hourly AS SELECT 1",
        "with compression policy": "ALTER TABLE telemetry_point SET (timescaledb.compress = false)",
    }
    with connection.cursor() as cursor:
        for message, sql in refused.items():
            with pytest.raises(DatabaseError, match=message), transaction.atomic():
                cursor.execute(StandinCursor.rewrite(sql))


def test_backwards_removes_policies_views_and_compression_and_forwards_again_restores(standin):
    forwards()
    complete = state()
    with connection.cursor() as cursor:
        storage_layout.revert_timescale(StandinCursor(cursor))
        storage_layout.revert_timescale(StandinCursor(cursor))  # twice: nothing left to undo
    reverted = state()
    assert reverted["jobs"] == []
    assert reverted["views"] == []
    # The table stays a hypertable, without compression (see revert_timescale).
    assert reverted["hypertables"] == [("telemetry_point", "time", "1 day", False, None)]
    assert reverted["rows"] == complete["rows"]
    assert calls("decompress_chunk") == []  # the stand-in has no chunks, but the query ran
    assert len(calls("show_chunks")) == 1
    forwards()
    again = state()
    assert again["views"] == complete["views"]
    assert again["hypertables"] == complete["hypertables"]
    assert [job[1:] for job in again["jobs"]] == [job[1:] for job in complete["jobs"]]


def _selector_rows(node_ids: list[int], bucket: str) -> dict[tuple[int, datetime], dict]:
    """What the raw reads give per node and bucket: point_buckets() per signal, and the number
    of points in the bucket."""
    start, end = START - timedelta(days=2), START + timedelta(days=3)
    trunc = {"hour": timedelta(hours=1), "day": timedelta(days=1)}[bucket]
    expected: dict[tuple[int, datetime], dict] = {}
    for node_id in node_ids:
        for signal in SIGNALS:
            for row in point_buckets(
                node_id=node_id, start=start, end=end, bucket=bucket, signal=signal
            ):
                entry = expected.setdefault((node_id, row["bucket"]), {})
                entry[f"{signal}_avg"] = row["avg"]
                entry[f"{signal}_min"] = row["min"]
                entry[f"{signal}_max"] = row["max"]
                entry[f"{signal}_count"] = row["count"]
        times = point_range(node_id=node_id, start=start, end=end).values_list("time", flat=True)
        epoch = datetime(2000, 1, 3, tzinfo=UTC)
        for when, points in Counter(epoch + (t - epoch) // trunc * trunc for t in times).items():
            expected[(node_id, when)]["points"] = points
    return expected


@pytest.mark.parametrize(
    ("view", "bucket"), [("telemetry_hourly", "hour"), ("telemetry_daily", "day")]
)
def test_continuous_aggregates_agree_with_the_selectors_raw_reads(rows, standin, view, bucket):
    # given real rows (copied into the stand-in schema), and what the selectors read from them
    with connection.cursor() as cursor:
        cursor.execute("SET search_path = public")
    expected = _selector_rows(rows, bucket)
    assert len(expected) > 3
    # when the branch runs on the copy and its aggregate is materialized (the policy's job)
    with connection.cursor() as cursor:
        cursor.execute("SET search_path = tsdb_standin, public")
    forwards()
    with connection.cursor() as cursor:
        cursor.execute(f"REFRESH MATERIALIZED VIEW {view}")
        cursor.execute(f"SELECT * FROM {view} ORDER BY node_id, bucket")
        names = [column.name for column in cursor.description]
        got = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    # then the same buckets, with the same counts, averages, minima and maxima
    assert {(row["node_id"], row["bucket"]) for row in got} == set(expected)
    for row in got:
        want = expected[(row["node_id"], row["bucket"])]
        assert row["points"] == want["points"]
        for signal in SIGNALS:
            assert row[f"{signal}_count"] == want[f"{signal}_count"], signal
            assert row[f"{signal}_min"] == want[f"{signal}_min"], signal
            assert row[f"{signal}_max"] == want[f"{signal}_max"], signal
            assert row[f"{signal}_avg"] == pytest.approx(want[f"{signal}_avg"]), signal
    # and the data really is uneven: counts differ between signals and from points
    mill_day = expected[(rows[0], min(k[1] for k in expected if k[0] == rows[0]))]
    assert len({mill_day["points"], mill_day["temperature_c_count"]}) == 2
    assert mill_day["torque_nm_count"] == 0

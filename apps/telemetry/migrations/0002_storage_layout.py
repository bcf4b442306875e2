"""Storage layout of telemetry_point, chosen at migrate time from what the database offers:

- PostgreSQL with the TimescaleDB extension available: a hypertable (1-day chunks), compression
  of chunks older than 7 days, a retention policy (TELEMETRY_RETENTION_DAYS, default 365) and
  continuous aggregates for hourly and daily rollups (telemetry_hourly, telemetry_daily).
- Plain PostgreSQL: the (node, time) primary key plus a BRIN index on time; rollups are queries.
- SQLite (the embedded default): the primary key only.
Nothing fails when the extension is absent; TIMESCALE_REQUIRED=1 makes its absence an error.
"""

import os

from django.core.exceptions import ImproperlyConfigured
from django.db import migrations

SIGNALS = [
    "temperature_c",
    "vibration_mm_s",
    "power_kw",
    "spindle_rpm",
    "torque_nm",
    "progress_pct",
]


def timescale_available(cursor) -> bool:
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    return cursor.fetchone() is not None


def rollup_sql(name: str, bucket: str) -> str:
    columns = ",\n".join(
        f"avg({s}) AS {s}_avg, min({s}) AS {s}_min, max({s}) AS {s}_max" for s in SIGNALS
    )
    return f"""
        CREATE MATERIALIZED VIEW {name} WITH (timescaledb.continuous) AS
        SELECT node_id, time_bucket(INTERVAL '{bucket}', time) AS bucket, count(*) AS points,
        {columns}
        FROM telemetry_point GROUP BY node_id, bucket WITH NO DATA;
        SELECT add_continuous_aggregate_policy('{name}',
            start_offset => INTERVAL '3 {bucket}s', end_offset => INTERVAL '1 {bucket}',
            schedule_interval => INTERVAL '1 {bucket}');
    """


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    required = os.environ.get("TIMESCALE_REQUIRED", "").lower() in {"1", "true", "yes"}
    with connection.cursor() as cursor:
        if not timescale_available(cursor):
            if required:
                raise ImproperlyConfigured("TIMESCALE_REQUIRED is set but TimescaleDB is absent.")
            cursor.execute(
                "CREATE INDEX telemetry_point_time_brin ON telemetry_point USING brin (time)"
            )
            return
        retention = int(os.environ.get("TELEMETRY_RETENTION_DAYS", "365"))
        cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        cursor.execute(
            "SELECT create_hypertable('telemetry_point', 'time', "
            "chunk_time_interval => INTERVAL '1 day', migrate_data => true)"
        )
        cursor.execute(
            "ALTER TABLE telemetry_point SET (timescaledb.compress, "
            "timescaledb.compress_segmentby = 'node_id', timescaledb.compress_orderby = 'time')"
        )
        cursor.execute("SELECT add_compression_policy('telemetry_point', INTERVAL '7 days')")
        cursor.execute(
            "SELECT add_retention_policy('telemetry_point', %s::interval)", [f"{retention} days"]
        )
        cursor.execute(rollup_sql("telemetry_hourly", "hour"))
        cursor.execute(rollup_sql("telemetry_daily", "day"))


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP MATERIALIZED VIEW IF EXISTS telemetry_daily")
        cursor.execute("DROP MATERIALIZED VIEW IF EXISTS telemetry_hourly")
        cursor.execute("DROP INDEX IF EXISTS telemetry_point_time_brin")


class Migration(migrations.Migration):
    atomic = False  # continuous aggregates cannot be created inside a transaction
    dependencies = [("telemetry", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]

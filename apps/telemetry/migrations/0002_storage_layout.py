"""Storage layout of telemetry_point, chosen at migrate time from what the database offers
(apps/telemetry/storage_layout.py holds the decision and every statement):

- PostgreSQL with TimescaleDB usable (available AND in shared_preload_libraries): a hypertable
  (1-day chunks), compression of chunks older than 7 days, a retention policy
  (TELEMETRY_RETENTION_DAYS, default 365) and continuous aggregates for hourly and daily rollups
  (telemetry_hourly, telemetry_daily).
- Plain PostgreSQL, or TimescaleDB installed but not preloaded (with a warning): the (node, time)
  primary key plus a BRIN index on time; rollups are queries.
- SQLite (the embedded default): the primary key only.
TIMESCALE_REQUIRED=1 makes any fallback an ImproperlyConfigured error that says what to configure.

Fixed in place: until then this migration rendered `INTERVAL 'hour'` and failed on every
TimescaleDB, so it never completed there; its plain PostgreSQL and SQLite results are unchanged.
Every step is re-runnable (a run that failed half-way is completed by the next one).

Backwards drops the BRIN index, or the continuous aggregates, the policies and compression
(chunks are decompressed). It leaves a hypertable a hypertable and the extension installed:
TimescaleDB cannot turn a hypertable back into a plain table in place, and dropping the
extension would drop the data. The table keeps 0001's columns, key and rows, and migrating
forward again completes the layout.
"""

from django.db import migrations

from apps.telemetry.storage_layout import layout_backwards, layout_forwards


def forwards(apps, schema_editor):
    layout_forwards(schema_editor.connection)


def backwards(apps, schema_editor):
    layout_backwards(schema_editor.connection)


class Migration(migrations.Migration):
    atomic = False  # continuous aggregates cannot be created inside a transaction
    dependencies = [("telemetry", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]

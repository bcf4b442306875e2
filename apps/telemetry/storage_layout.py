"""Storage layout of telemetry_point, chosen at migrate time (migration 0002) from what the
database offers, and the exact SQL each layout runs (so tests can run it too).

- TimescaleDB usable (the extension is available AND its library is preloaded): a hypertable
  (1-day chunks), compression of chunks older than 7 days, a retention policy
  (TELEMETRY_RETENTION_DAYS, default 365) and two continuous aggregates, telemetry_hourly and
  telemetry_daily, with real-time aggregation on.
- Plain PostgreSQL (or TimescaleDB available but not preloaded, with a warning): the (node, time)
  primary key plus a BRIN index on time.
- SQLite: the primary key only.
TIMESCALE_REQUIRED=1 turns every fallback into ImproperlyConfigured.

Every statement is re-runnable (IF NOT EXISTS, if_not_exists => true, guarded ALTERs): a run that
failed half-way is finished by the next one, and a second run changes nothing.

Migration 0002 calls these functions: change what they do only together with a new migration.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

TABLE = "telemetry_point"
BRIN_INDEX = "telemetry_point_time_brin"
CHUNK_INTERVAL = "1 day"
COMPRESS_AFTER = "7 days"
DEFAULT_RETENTION_DAYS = 365
# The signals the aggregates roll up, frozen as of this layout (not read from
# models.SIGNAL_RANGES): a new signal needs a new migration that rebuilds the aggregates, and a
# test fails until it exists.
ROLLUP_SIGNALS = (
    "temperature_c",
    "vibration_mm_s",
    "power_kw",
    "spindle_rpm",
    "torque_nm",
    "progress_pct",
    "material_remaining",
)


@dataclass(frozen=True)
class Rollup:
    view: str
    bucket: str  # an interval literal PostgreSQL accepts: '1 hour', not 'hour'
    # The refresh policy re-materializes [now - start_offset, now - end_offset] every
    # schedule_interval. Late points (an edge gateway that was offline and re-sends its buffer)
    # land in that window for 7 days, the same age at which chunks get compressed; anything older
    # needs CALL refresh_continuous_aggregate(...) by hand. Buckets newer than end_offset are
    # computed from the raw rows at query time (materialized_only = false).
    start_offset: str
    end_offset: str
    schedule_interval: str


ROLLUPS = (
    Rollup("telemetry_hourly", "1 hour", "7 days", "1 hour", "1 hour"),
    Rollup("telemetry_daily", "1 day", "7 days", "1 day", "1 hour"),
)


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any: ...

    def fetchone(self) -> Any: ...


class Layout(StrEnum):
    NONE = "none"  # SQLite: the primary key only
    PLAIN = "plain"  # PostgreSQL: plus a BRIN index on time
    TIMESCALE = "timescale"  # hypertable, compression, retention, continuous aggregates


@dataclass(frozen=True)
class TimescaleFacts:
    available: bool  # the server has the extension's files (pg_available_extensions)
    preloaded: bool  # the server loaded its library at start (shared_preload_libraries)
    installed: bool = False  # CREATE EXTENSION has run in this database (pg_extension)
    hypertable: bool = False  # telemetry_point is already a hypertable
    preload_setting: str | None = None  # shared_preload_libraries, when we may read it


@dataclass(frozen=True)
class Decision:
    layout: Layout
    warning: str = ""


def _preload_advice(facts: TimescaleFacts) -> str:
    current = f" (it is now {facts.preload_setting!r})" if facts.preload_setting is not None else ""
    return (
        "add timescaledb to shared_preload_libraries in postgresql.conf"
        f"{current}, e.g. shared_preload_libraries = 'timescaledb', and restart PostgreSQL"
    )


def decide_layout(*, vendor: str, facts: TimescaleFacts | None, required: bool) -> Decision:
    """The layout for these facts; raises ImproperlyConfigured when it cannot be honoured."""
    if vendor != "postgresql":
        if required:
            raise ImproperlyConfigured(
                "TIMESCALE_REQUIRED is set but the database is SQLite: TimescaleDB needs "
                "PostgreSQL (set DATABASE_URL), or unset TIMESCALE_REQUIRED."
            )
        return Decision(Layout.NONE)
    assert facts is not None
    if facts.installed and not facts.preloaded:
        # The database already uses the extension; nothing on it works until the library loads.
        raise ImproperlyConfigured(
            "The timescaledb extension is installed in this database but its library is not "
            f"preloaded: {_preload_advice(facts)}."
        )
    if facts.available and facts.preloaded:
        return Decision(Layout.TIMESCALE)
    if not facts.available:
        if required:
            raise ImproperlyConfigured(
                "TIMESCALE_REQUIRED is set but TimescaleDB is not installed on the PostgreSQL "
                "server: install TimescaleDB for this PostgreSQL version (or use the "
                "timescale/timescaledb image) and set shared_preload_libraries = 'timescaledb' "
                "in postgresql.conf, then restart PostgreSQL."
            )
        return Decision(Layout.PLAIN)  # plain PostgreSQL, as on CI and developer machines
    problem = (
        "TimescaleDB is installed on the PostgreSQL server but not preloaded, so "
        "CREATE EXTENSION timescaledb would fail"
    )
    fix = _preload_advice(facts)
    if required:
        raise ImproperlyConfigured(f"TIMESCALE_REQUIRED is set but {problem}: {fix}.")
    # Someone meant to use TimescaleDB here: say loudly what they get instead.
    return Decision(
        Layout.PLAIN,
        warning=(
            f"{problem}; telemetry_point gets the plain PostgreSQL layout (BRIN index, no "
            f"hypertable, no compression, retention or continuous aggregates). To switch "
            f"later: {fix}, then run `manage.py migrate telemetry 0001` and "
            "`manage.py migrate telemetry`."
        ),
    )


def _preload_list(setting: str) -> set[str]:
    names = set()
    for item in setting.split(","):
        name = item.strip().strip('"').rsplit("/", 1)[-1]
        names.add(name.removesuffix(".so"))
    return names


def read_facts(cursor: Cursor) -> TimescaleFacts:
    """What the server offers. Never calls CREATE EXTENSION to find out: loading timescaledb
    without preload is FATAL (it ends the connection), so no savepoint could catch it."""
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'), "
        "EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'), "
        # The preloaded loader defines this setting; readable by any user.
        "current_setting('timescaledb.disable_load', true) IS NOT NULL, "
        # Readable by superusers and pg_read_all_settings only (else no row, never an error).
        "(SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries')"
    )
    available, installed, loader_present, preload_setting = cursor.fetchone()
    preloaded = bool(loader_present) or (
        preload_setting is not None and "timescaledb" in _preload_list(preload_setting)
    )
    hypertable = False
    if installed and preloaded:
        cursor.execute(HYPERTABLE_EXISTS_SQL)
        hypertable = cursor.fetchone() is not None
    return TimescaleFacts(
        available=bool(available),
        preloaded=preloaded,
        installed=bool(installed),
        hypertable=hypertable,
        preload_setting=preload_setting,
    )


def timescale_required() -> bool:
    return os.environ.get("TIMESCALE_REQUIRED", "").strip().lower() in {"1", "true", "yes", "on"}


def retention_days() -> int:
    raw = os.environ.get("TELEMETRY_RETENTION_DAYS", str(DEFAULT_RETENTION_DAYS))
    try:
        days = int(raw)
    except ValueError:
        days = 0
    if days < 1:
        raise ImproperlyConfigured(
            f"TELEMETRY_RETENTION_DAYS must be a whole number of days >= 1, not {raw!r}."
        )
    return days


# --- SQL -----------------------------------------------------------------------------------------

PLAIN_FORWARD_SQL = f"CREATE INDEX IF NOT EXISTS {BRIN_INDEX} ON {TABLE} USING brin (time)"
PLAIN_BACKWARD_SQL = f"DROP INDEX IF EXISTS {BRIN_INDEX}"

CREATE_EXTENSION_SQL = "CREATE EXTENSION IF NOT EXISTS timescaledb"
HYPERTABLE_EXISTS_SQL = (
    "SELECT 1 FROM timescaledb_information.hypertables "
    f"WHERE hypertable_schema = current_schema() AND hypertable_name = '{TABLE}'"
)
COMPRESSION_ENABLED_SQL = (
    "SELECT compression_enabled FROM timescaledb_information.hypertables "
    f"WHERE hypertable_schema = current_schema() AND hypertable_name = '{TABLE}'"
)
ENABLE_COMPRESSION_SQL = (
    f"ALTER TABLE {TABLE} SET (timescaledb.compress, "
    "timescaledb.compress_segmentby = 'node_id', timescaledb.compress_orderby = 'time')"
)
DISABLE_COMPRESSION_SQL = f"ALTER TABLE {TABLE} SET (timescaledb.compress = false)"


def hypertable_sql() -> str:
    # migrate_data: a table that already holds rows (a database that ran the plain layout
    # first) is converted, not refused.
    return (
        f"SELECT create_hypertable('{TABLE}', 'time', "
        f"chunk_time_interval => INTERVAL '{CHUNK_INTERVAL}', "
        "if_not_exists => true, migrate_data => true)"
    )


def compression_policy_sql() -> str:
    return (
        f"SELECT add_compression_policy('{TABLE}', "
        f"compress_after => INTERVAL '{COMPRESS_AFTER}', if_not_exists => true)"
    )


def retention_policy_sql(days: int) -> str:
    # Already there with another age: kept (TimescaleDB warns); change it with
    # remove_retention_policy + add_retention_policy.
    return (
        f"SELECT add_retention_policy('{TABLE}', "
        f"drop_after => INTERVAL '{int(days)} days', if_not_exists => true)"
    )


def rollup_view_sql(rollup: Rollup) -> str:
    """One row per node and bucket: `points` counts rows (point_range().count()), and per
    signal avg/min/max over non-null values and `<signal>_count` counts them, as the
    selectors' point_buckets() does."""
    columns = ",\n    ".join(
        f"avg({s}) AS {s}_avg, min({s}) AS {s}_min, max({s}) AS {s}_max, count({s}) AS {s}_count"
        for s in ROLLUP_SIGNALS
    )
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {rollup.view}\n"
        "WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS\n"
        f"SELECT node_id, time_bucket(INTERVAL '{rollup.bucket}', time) AS bucket,\n"
        f"    count(*) AS points,\n    {columns}\n"
        f"FROM {TABLE}\n"
        f"GROUP BY node_id, time_bucket(INTERVAL '{rollup.bucket}', time)\n"
        "WITH NO DATA"
    )


def rollup_policy_sql(rollup: Rollup) -> str:
    return (
        f"SELECT add_continuous_aggregate_policy('{rollup.view}', "
        f"start_offset => INTERVAL '{rollup.start_offset}', "
        f"end_offset => INTERVAL '{rollup.end_offset}', "
        f"schedule_interval => INTERVAL '{rollup.schedule_interval}', if_not_exists => true)"
    )


def rollup_drop_sql(rollup: Rollup) -> str:
    # Dropping a continuous aggregate drops its refresh policy with it.
    return f"DROP MATERIALIZED VIEW IF EXISTS {rollup.view}"


REMOVE_RETENTION_SQL = f"SELECT remove_retention_policy('{TABLE}', if_exists => true)"
REMOVE_COMPRESSION_POLICY_SQL = f"SELECT remove_compression_policy('{TABLE}', if_exists => true)"
DECOMPRESS_ALL_SQL = (
    f"SELECT decompress_chunk(c, if_compressed => true) FROM show_chunks('{TABLE}') c"
)


# --- Applying ------------------------------------------------------------------------------------


def _compression_enabled(cursor: Cursor) -> bool:
    cursor.execute(COMPRESSION_ENABLED_SQL)
    row = cursor.fetchone()
    return bool(row and row[0])


def apply_plain(cursor: Cursor) -> None:
    cursor.execute(PLAIN_FORWARD_SQL)


def apply_timescale(cursor: Cursor, *, retention: int) -> None:
    cursor.execute(CREATE_EXTENSION_SQL)
    cursor.execute(hypertable_sql())
    # Changing compression settings fails once chunks are compressed: enable it only once.
    if not _compression_enabled(cursor):
        cursor.execute(ENABLE_COMPRESSION_SQL)
    cursor.execute(compression_policy_sql())
    cursor.execute(retention_policy_sql(retention))
    for rollup in ROLLUPS:
        cursor.execute(rollup_view_sql(rollup))
        cursor.execute(rollup_policy_sql(rollup))


def revert_timescale(cursor: Cursor) -> None:
    """Undo everything apply_timescale did except two things, on purpose: the table stays a
    hypertable (TimescaleDB cannot turn one back into a plain table in place; copying every row
    into a new table could take hours and double the disk), and the extension stays (dropping
    it would drop the chunks, that is, the data). The rows, the columns and the primary key are
    those of 0001, chunks are decompressed and no background job is left, so migration 0001's
    schema holds and migrating forward again completes the layout."""
    for rollup in reversed(ROLLUPS):
        cursor.execute(rollup_drop_sql(rollup))
    cursor.execute(REMOVE_RETENTION_SQL)
    cursor.execute(REMOVE_COMPRESSION_POLICY_SQL)
    if _compression_enabled(cursor):
        cursor.execute(DECOMPRESS_ALL_SQL)
        cursor.execute(DISABLE_COMPRESSION_SQL)


def _announce(warning: str) -> None:
    logger.warning(warning)
    # migrate runs RunPython without a handle on its stdout; an operator reads stderr.
    sys.stderr.write(f"\n  WARNING (telemetry storage layout): {warning}\n")


def layout_forwards(
    connection: Any,
    *,
    facts: TimescaleFacts | None = None,
    required: bool | None = None,
) -> Decision:
    """Migration 0002 forwards. `facts`/`required` default to the server's and the
    environment's (tests pass them to play servers they do not have)."""
    required = timescale_required() if required is None else required
    if connection.vendor != "postgresql":
        return decide_layout(vendor=connection.vendor, facts=None, required=required)
    with connection.cursor() as cursor:
        facts = read_facts(cursor) if facts is None else facts
        decision = decide_layout(vendor="postgresql", facts=facts, required=required)
        if decision.warning:
            _announce(decision.warning)
        if decision.layout == Layout.TIMESCALE:
            apply_timescale(cursor, retention=retention_days())
        else:
            apply_plain(cursor)
    return decision


def layout_backwards(connection: Any) -> None:
    """Migration 0002 backwards: undo whichever layout is actually there."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        facts = read_facts(cursor)
        if facts.installed and not facts.preloaded:
            decide_layout(vendor="postgresql", facts=facts, required=False)  # raises
        if facts.hypertable:
            revert_timescale(cursor)
        cursor.execute(PLAIN_BACKWARD_SQL)

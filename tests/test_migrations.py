import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from apps.telemetry.storage_layout import Layout, decide_layout, layout_forwards, read_facts


@pytest.mark.django_db
def test_models_and_migrations_agree():
    # Raises SystemExit(1) when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def _telemetry_layout() -> list[str]:
    """What migration 0002 leaves: the table's indexes and the rollup views, if any."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master "
                "WHERE type = 'index' AND tbl_name = 'telemetry_point' ORDER BY name"
            )
        else:
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'telemetry_point' "
                # A continuous aggregate is a view (pg_matviews does not list it).
                "UNION ALL SELECT relname FROM pg_class WHERE relkind IN ('v', 'm') "
                "AND relname IN ('telemetry_hourly', 'telemetry_daily') ORDER BY 1"
            )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_telemetry_storage_layout_migrates_backwards_and_forwards_again(monkeypatch):
    # given the test database, migrated forward (BRIN index on plain PostgreSQL)
    monkeypatch.delenv("TIMESCALE_REQUIRED", raising=False)
    forward = _telemetry_layout()
    timescale = _timescale_usable()
    if connection.vendor == "postgresql":
        assert any("USING brin" in index for index in forward) is not timescale
        assert ("telemetry_hourly" in forward) is timescale
    try:
        # when migrated back to 0001, twice
        call_command("migrate", "telemetry", "0001", verbosity=0)
        backward = _telemetry_layout()
        call_command("migrate", "telemetry", "0001", verbosity=0)
        # then the layout is 0001's: the primary key only (on TimescaleDB the table stays a
        # hypertable, with its time index; see the migration's docstring)
        assert _telemetry_layout() == backward
        if connection.vendor == "postgresql":
            primary_key = (
                "CREATE UNIQUE INDEX telemetry_point_pkey ON public.telemetry_point "
                'USING btree (node_id, "time")'
            )
            hypertable_index = (
                "CREATE INDEX telemetry_point_time_idx ON public.telemetry_point "
                'USING btree ("time" DESC)'
            )
            assert backward == ([hypertable_index, primary_key] if timescale else [primary_key])
        else:
            assert all(name.startswith("sqlite_autoindex") for name in backward)
    finally:
        # and migrating forward again gives the same layout as the first time
        call_command("migrate", "telemetry", verbosity=0)
    assert _telemetry_layout() == forward
    # and running the layout step once more changes nothing
    layout_forwards(connection)
    assert _telemetry_layout() == forward


@pytest.mark.django_db(transaction=True)
def test_timescale_required_fails_migrate_on_a_database_without_it(monkeypatch):
    call_command("migrate", "telemetry", "0001", verbosity=0)
    try:
        monkeypatch.setenv("TIMESCALE_REQUIRED", "1")
        if _timescale_usable():  # run against a real TimescaleDB: required and present
            call_command("migrate", "telemetry", verbosity=0)
        else:
            with pytest.raises(ImproperlyConfigured, match="TIMESCALE_REQUIRED is set"):
                call_command("migrate", "telemetry", verbosity=0)
            assert not _applied("0002_storage_layout")
    finally:
        monkeypatch.delenv("TIMESCALE_REQUIRED", raising=False)
        call_command("migrate", "telemetry", verbosity=0)
    assert _applied("0002_storage_layout")


def _applied(name: str) -> bool:
    return MigrationRecorder(connection).migration_qs.filter(app="telemetry", name=name).exists()


def _timescale_usable() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        facts = read_facts(cursor)
    return decide_layout(vendor="postgresql", facts=facts, required=False).layout == (
        Layout.TIMESCALE
    )

"""Which storage layout migration 0002 chooses, and what it leaves in the database (both backends).
The SQL of the TimescaleDB branch itself is run in test_storage_layout_sql.py."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from apps.telemetry import storage_layout
from apps.telemetry.models import SIGNAL_RANGES
from apps.telemetry.storage_layout import (
    Layout,
    TimescaleFacts,
    decide_layout,
    layout_backwards,
    layout_forwards,
    read_facts,
)

NOT_AVAILABLE = TimescaleFacts(available=False, preloaded=False)
NOT_PRELOADED = TimescaleFacts(
    available=True, preloaded=False, preload_setting="pg_stat_statements"
)
USABLE = TimescaleFacts(available=True, preloaded=True, preload_setting="timescaledb")


def telemetry_indexes() -> list[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='telemetry_point'"
            )
        else:
            cursor.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'telemetry_point' "
                "AND schemaname = current_schema() ORDER BY indexname"
            )
        return [row[0] for row in cursor.fetchall()]


def test_rollups_cover_every_signal_of_the_model():
    # A new signal needs a migration that rebuilds the aggregates (see ROLLUP_SIGNALS).
    assert tuple(SIGNAL_RANGES) == storage_layout.ROLLUP_SIGNALS


def test_no_extension_gives_the_plain_layout_quietly():
    # Plain PostgreSQL is the normal case on CI and developer machines: no warning.
    decision = decide_layout(vendor="postgresql", facts=NOT_AVAILABLE, required=False)
    assert decision == storage_layout.Decision(Layout.PLAIN)


def test_no_extension_with_timescale_required_is_an_error():
    with pytest.raises(ImproperlyConfigured, match="TimescaleDB is not installed") as raised:
        decide_layout(vendor="postgresql", facts=NOT_AVAILABLE, required=True)
    assert "shared_preload_libraries = 'timescaledb'" in str(raised.value)


def test_available_but_not_preloaded_falls_back_with_the_fix_in_the_warning():
    decision = decide_layout(vendor="postgresql", facts=NOT_PRELOADED, required=False)
    assert decision.layout == Layout.PLAIN
    assert "not preloaded" in decision.warning
    assert "shared_preload_libraries = 'timescaledb'" in decision.warning
    assert "'pg_stat_statements'" in decision.warning  # what is there today
    assert "restart PostgreSQL" in decision.warning
    assert "migrate telemetry 0001" in decision.warning  # how to switch afterwards


def test_available_but_not_preloaded_with_timescale_required_says_what_to_configure():
    with pytest.raises(ImproperlyConfigured) as raised:
        decide_layout(vendor="postgresql", facts=NOT_PRELOADED, required=True)
    message = str(raised.value)
    assert "not preloaded" in message
    assert "shared_preload_libraries = 'timescaledb'" in message
    assert "postgresql.conf" in message
    assert "restart PostgreSQL" in message


def test_available_and_preloaded_gives_timescale():
    for required in (False, True):
        decision = decide_layout(vendor="postgresql", facts=USABLE, required=required)
        assert decision == storage_layout.Decision(Layout.TIMESCALE)


def test_extension_installed_but_library_gone_is_always_an_error():
    broken = TimescaleFacts(available=True, preloaded=False, installed=True, hypertable=False)
    with pytest.raises(ImproperlyConfigured, match="installed in this database"):
        decide_layout(vendor="postgresql", facts=broken, required=False)


def test_sqlite_gets_no_extra_layout_unless_timescale_is_required():
    assert decide_layout(vendor="sqlite", facts=None, required=False).layout == Layout.NONE
    with pytest.raises(ImproperlyConfigured, match="SQLite"):
        decide_layout(vendor="sqlite", facts=None, required=True)


@pytest.mark.parametrize(
    ("setting", "preloaded"),
    [
        ("timescaledb", True),
        ("pg_stat_statements, timescaledb", True),
        ('"$libdir/timescaledb.so",auto_explain', True),
        ("pg_stat_statements", False),
        ("timescaledb_toolkit", False),
        ("", False),
    ],
)
def test_preload_setting_is_read_as_a_list(setting, preloaded):
    assert ("timescaledb" in storage_layout._preload_list(setting)) is preloaded


@pytest.mark.parametrize("value", ["0", "-3", "a year", ""])
def test_retention_must_be_a_positive_number_of_days(monkeypatch, value):
    monkeypatch.setenv("TELEMETRY_RETENTION_DAYS", value)
    with pytest.raises(ImproperlyConfigured, match="TELEMETRY_RETENTION_DAYS"):
        storage_layout.retention_days()


def test_retention_defaults_to_a_year(monkeypatch):
    monkeypatch.delenv("TELEMETRY_RETENTION_DAYS", raising=False)
    assert storage_layout.retention_days() == 365
    monkeypatch.setenv("TELEMETRY_RETENTION_DAYS", "30")
    assert storage_layout.retention_days() == 30


@pytest.mark.django_db
def test_facts_read_from_the_real_server_match_the_layout_the_test_database_got():
    if connection.vendor == "sqlite":
        assert decide_layout(vendor="sqlite", facts=None, required=False).layout == Layout.NONE
        assert all(name.startswith("sqlite_autoindex") for name in telemetry_indexes())
        return
    with connection.cursor() as cursor:
        facts = read_facts(cursor)
        cursor.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
        assert facts.available is (cursor.fetchone()[0] == 1)
        cursor.execute("SHOW shared_preload_libraries")
        assert facts.preloaded is ("timescaledb" in cursor.fetchone()[0])
        assert facts.preload_setting is not None  # the test user may read it
    decision = decide_layout(vendor="postgresql", facts=facts, required=False)
    indexes = " ".join(telemetry_indexes())
    if decision.layout == Layout.TIMESCALE:
        assert facts.hypertable
        assert "USING brin" not in indexes
    else:
        assert not facts.hypertable
        assert 'USING brin ("time")' in indexes


@pytest.mark.django_db
def test_available_but_not_preloaded_on_postgresql_migrates_plain_and_warns(capsys, caplog):
    # The facts are played (CI's server lacks the extension's files); the statements are real.
    if connection.vendor == "sqlite":
        assert layout_forwards(connection, facts=NOT_PRELOADED, required=False).layout == (
            Layout.NONE
        )
        return
    # given the table as 0001 left it (the test's transaction puts everything back)
    layout_backwards(connection)
    assert not any("USING brin" in index for index in telemetry_indexes())
    # when the layout step runs on a server that has TimescaleDB's files but no preload
    with caplog.at_level(logging.WARNING, logger="apps.telemetry.storage_layout"):
        decision = layout_forwards(connection, facts=NOT_PRELOADED, required=False)
    # then the plain layout, and the operator is told what to configure
    assert decision.layout == Layout.PLAIN
    assert [i for i in telemetry_indexes() if "USING brin" in i] == [
        'CREATE INDEX telemetry_point_time_brin ON public.telemetry_point USING brin ("time")'
    ]
    assert "shared_preload_libraries = 'timescaledb'" in capsys.readouterr().err
    assert any("not preloaded" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_timescale_required_stops_the_migration_before_any_change():
    facts: Any = NOT_PRELOADED if connection.vendor == "postgresql" else None
    before = telemetry_indexes()
    with pytest.raises(ImproperlyConfigured):
        layout_forwards(connection, facts=facts, required=True)
    assert telemetry_indexes() == before

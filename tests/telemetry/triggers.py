"""A real database trigger that makes storing chosen points fail, on PostgreSQL and SQLite:
the database itself refuses, standing for whatever a future validation gap lets through."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

POISON_POWER_KW = 666.25  # a point with this power_kw is refused by the trigger


@contextmanager
def refusing_trigger(*, error: str) -> Iterator[None]:
    """While active, inserting a point with power_kw == POISON_POWER_KW raises:
    error="data": a data error (PostgreSQL SQLSTATE 22023; a constraint failure on SQLite);
    error="unexpected": an error the ingest path has no reason to expect (PostgreSQL RAISE
    EXCEPTION, SQLSTATE P0001; a runtime SQL error on SQLite)."""
    assert error in ("data", "unexpected")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            code = "22023" if error == "data" else "P0001"
            cursor.execute(
                "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.power_kw = {POISON_POWER_KW} THEN "
                f"RAISE EXCEPTION 'poison point' USING ERRCODE = '{code}'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON telemetry_point "
                "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
            )
        else:
            body = (
                "SELECT RAISE(ABORT, 'poison point')"
                if error == "data"
                else "SELECT json_extract('not json', '$')"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON telemetry_point "
                f"WHEN NEW.power_kw = {POISON_POWER_KW} BEGIN {body}; END"
            )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("DROP TRIGGER IF EXISTS refuse_poison ON telemetry_point")
                cursor.execute("DROP FUNCTION IF EXISTS refuse_poison()")
            else:
                cursor.execute("DROP TRIGGER IF EXISTS refuse_poison")

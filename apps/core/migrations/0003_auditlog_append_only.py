"""Make the audit log append-only in the database itself: PostgreSQL refuses UPDATE and DELETE
of rows (TRUNCATE, an administrator's retention tool, still works); SQLite refuses UPDATE."""

from django.db import migrations


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            """
            CREATE OR REPLACE FUNCTION core_auditlog_refuse_change() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'core_auditlog is append-only (% refused)', TG_OP;
            END;
            $$ LANGUAGE plpgsql;
            CREATE TRIGGER core_auditlog_append_only
                BEFORE UPDATE OR DELETE ON core_auditlog
                FOR EACH ROW EXECUTE FUNCTION core_auditlog_refuse_change();
            """,
            params=None,  # the % in RAISE is PL/pgSQL's, not a query placeholder
        )
    elif vendor == "sqlite":
        # SQLite (the embedded default) guards rows against UPDATE only: it has no TRUNCATE, so
        # `flush` and test teardown must be able to DELETE. The model refuses delete() itself.
        schema_editor.execute(
            """
            CREATE TRIGGER core_auditlog_no_update BEFORE UPDATE ON core_auditlog
            BEGIN SELECT RAISE(ABORT, 'core_auditlog is append-only (UPDATE refused)'); END;
            """
        )


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            "DROP TRIGGER IF EXISTS core_auditlog_append_only ON core_auditlog;"
            "DROP FUNCTION IF EXISTS core_auditlog_refuse_change();"
        )
    elif vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS core_auditlog_no_update;")


class Migration(migrations.Migration):
    dependencies = [("core", "0002_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]

"""Make the audit log append-only in the database itself: UPDATE and DELETE are refused."""

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
            """
        )
    elif vendor == "sqlite":
        for op in ("UPDATE", "DELETE"):
            schema_editor.execute(
                f"""
                CREATE TRIGGER core_auditlog_no_{op.lower()} BEFORE {op} ON core_auditlog
                BEGIN SELECT RAISE(ABORT, 'core_auditlog is append-only ({op} refused)'); END;
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
        schema_editor.execute("DROP TRIGGER IF EXISTS core_auditlog_no_delete;")


class Migration(migrations.Migration):
    dependencies = [("core", "0002_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]

from django.db import migrations

from apps.maintenance.rules import DEFAULT_RULES


def install(apps, schema_editor):
    rule = apps.get_model("maintenance", "ThresholdRule")
    for signal, kind, mode, warning, critical in DEFAULT_RULES:
        rule.objects.get_or_create(
            signal=signal,
            node_kind=kind,
            node=None,
            defaults={"mode": mode, "warning": warning, "critical": critical},
        )


def remove(apps, schema_editor):
    rule = apps.get_model("maintenance", "ThresholdRule")
    for signal, kind, _mode, _warning, _critical in DEFAULT_RULES:
        rule.objects.filter(signal=signal, node_kind=kind, node=None).delete()


class Migration(migrations.Migration):
    dependencies = [("maintenance", "0001_initial")]

    operations = [migrations.RunPython(install, remove)]

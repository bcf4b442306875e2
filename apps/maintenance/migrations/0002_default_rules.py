from django.db import migrations

# The defaults as they were when this migration was written (one rule per signal then); later
# defaults are installed by later migrations (0009: the rise rules).
DEFAULT_RULES = [
    ("temperature_c", "", "above", 75.0, 85.0),
    ("vibration_mm_s", "", "above", 2.5, 4.0),
    ("power_kw", "", "baseline_ratio", 1.2, 1.5),
    ("temperature_c", "fdm_printer", "above", 245.0, 260.0),
    ("temperature_c", "sls_printer", "above", 200.0, 215.0),
]


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

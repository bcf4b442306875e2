"""The emission factors the issue names, in kg CO2e per kWh; admins edit them afterwards."""

from django.db import migrations

DEFAULTS = {
    "solar": (0.0, "Operational emissions only."),
    "wind": (0.0, "Operational emissions only."),
    "battery": (0.1, "Round-trip losses and the charging mix."),
    "fuel_cell": (0.2, "Grey-hydrogen or natural-gas reforming."),
    "grid": (0.475, "Global average grid intensity (IEA)."),
}


def seed(apps, schema_editor):
    EmissionFactor = apps.get_model("energy", "EmissionFactor")
    for kind, (factor, note) in DEFAULTS.items():
        EmissionFactor.objects.get_or_create(
            kind=kind, defaults={"kg_co2e_per_kwh": factor, "note": note}
        )


def unseed(apps, schema_editor):
    apps.get_model("energy", "EmissionFactor").objects.filter(kind__in=DEFAULTS).delete()


class Migration(migrations.Migration):
    dependencies = [("energy", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]

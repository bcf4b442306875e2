from django.conf import settings
from django.db import migrations

from apps.materials.catalog import install_standard_catalog, standard_materials


def install(apps, schema_editor):
    install_standard_catalog(apps.get_model("materials", "Material"), settings.JOBS_CURRENCY)


def remove(apps, schema_editor):
    material = apps.get_model("materials", "Material")
    for row in standard_materials():
        material.objects.filter(name=row["name"], inventories__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("materials", "0001_initial")]

    operations = [migrations.RunPython(install, remove)]

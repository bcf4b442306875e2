"""Nodes' free-text processes and materials become catalogue codes ("laser cutting" ->
"laser_cutting", "PLA" -> "pla"). Values the catalogue does not know are kept as they were:
the node page and the API's capability_problems name them to the vendor, so nothing is lost
silently. Going back leaves the codes (the older code reads them as plain names)."""

from django.db import migrations

from apps.vendors.catalog import codes_keeping_unknown


def to_codes(apps, schema_editor):
    node_model = apps.get_model("vendors", "FabricationNode")
    for node in node_model.objects.only("pk", "processes", "materials").iterator():
        processes = codes_keeping_unknown(list(node.processes or []), kind="process")
        materials = codes_keeping_unknown(list(node.materials or []), kind="material")
        if processes != node.processes or materials != node.materials:
            node_model.objects.filter(pk=node.pk).update(processes=processes, materials=materials)


class Migration(migrations.Migration):
    dependencies = [("vendors", "0002_node_requires_confirmation")]

    operations = [migrations.RunPython(to_codes, migrations.RunPython.noop)]

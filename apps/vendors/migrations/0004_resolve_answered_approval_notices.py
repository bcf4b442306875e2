"""Notices "Node awaiting approval: <name>" sent before decisions reworded them (they pointed at
the whole queue, so a decision could not find them): for nodes already approved or rejected,
they now say so and are marked read. A name still awaiting a decision somewhere is left alone."""

from django.db import migrations
from django.utils import timezone

OLD_LINK = "/ops/approvals/"


def resolve(apps, schema_editor):
    Node = apps.get_model("vendors", "FabricationNode")
    Notification = apps.get_model("core", "Notification")
    pending = set(Node.objects.filter(approval="pending").values_list("name", flat=True))
    now = timezone.now()
    for node in Node.objects.exclude(approval="pending").select_related("vendor"):
        if node.name in pending:
            continue
        verdict = "approved" if node.approval == "approved" else "rejected"
        for notice in Notification.objects.filter(
            link=OLD_LINK, title=f"Node awaiting approval: {node.name}"
        ):
            notice.title = f"Node {verdict}: {node.name}"[:200]
            notice.body = f"{notice.body} It has since been {verdict}.".strip()
            notice.read_at = notice.read_at or now
            notice.link = f"/ops/approvals/#node-{node.pk}"
            notice.save(update_fields=["title", "body", "read_at", "link"])


class Migration(migrations.Migration):
    dependencies = [
        ("vendors", "0003_catalogue_codes"),
        ("core", "0001_initial"),
    ]

    operations = [migrations.RunPython(resolve, migrations.RunPython.noop)]

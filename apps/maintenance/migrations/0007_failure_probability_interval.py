"""Issue 20: the failure probability's interval and evidence on predictions and node health."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("maintenance", "0006_node_cadence"),
    ]

    operations = [
        migrations.AddField(
            model_name="nodehealth",
            name="failure_evidence",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="nodehealth",
            name="failure_high",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="nodehealth",
            name="failure_low",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="prediction",
            name="failure_evidence",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="prediction",
            name="failure_high",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="prediction",
            name="failure_low",
            field=models.FloatField(blank=True, null=True),
        ),
    ]

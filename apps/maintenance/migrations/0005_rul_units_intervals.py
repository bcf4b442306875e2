"""Issue 20: the RUL in the node's unit (hours or cycles) with its interval and evidence on
predictions and node health; the time unit of imported histories."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("maintenance", "0004_rule_below_and_rate"),
    ]

    operations = [
        migrations.AddField(
            model_name="historyset",
            name="time_unit",
            field=models.CharField(
                choices=[("s", "Seconds (timestamps)"), ("cycles", "Cycles")],
                default="s",
                max_length=6,
            ),
        ),
        migrations.AddField(
            model_name="nodehealth",
            name="rul_evidence",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="nodehealth",
            name="rul_high",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="nodehealth",
            name="rul_low",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="nodehealth",
            name="rul_unit",
            field=models.CharField(blank=True, max_length=6),
        ),
        migrations.AddField(
            model_name="nodehealth",
            name="rul_value",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="prediction",
            name="rul_evidence",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="prediction",
            name="rul_high",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="prediction",
            name="rul_low",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="prediction",
            name="rul_unit",
            field=models.CharField(blank=True, max_length=6),
        ),
        migrations.AddField(
            model_name="prediction",
            name="rul_value",
            field=models.FloatField(blank=True, null=True),
        ),
    ]

"""The unique constraints of rules and states per (signal, mode), in a migration of their own:
PostgreSQL cannot build an index in the transaction that changed the table's rows (0009's data
step)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("maintenance", "0009_rules_per_mode_data")]

    operations = [
        migrations.AddConstraint(
            model_name="signalstate",
            constraint=models.UniqueConstraint(
                fields=("node", "signal", "mode"), name="one_state_per_node_signal_mode"
            ),
        ),
        migrations.AddConstraint(
            model_name="thresholdrule",
            constraint=models.UniqueConstraint(
                condition=models.Q(("node__isnull", True), ("node_kind", "")),
                fields=("signal", "mode"),
                name="one_default_rule_per_signal_mode",
            ),
        ),
        migrations.AddConstraint(
            model_name="thresholdrule",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    ("node__isnull", True), models.Q(("node_kind", ""), _negated=True)
                ),
                fields=("signal", "mode", "node_kind"),
                name="one_kind_rule_per_signal_mode",
            ),
        ),
        migrations.AddConstraint(
            model_name="thresholdrule",
            constraint=models.UniqueConstraint(
                condition=models.Q(("node__isnull", False)),
                fields=("signal", "mode", "node"),
                name="one_node_rule_per_signal_mode",
            ),
        ),
    ]

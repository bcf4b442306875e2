"""`manage.py evaluate_models [--train]`: the maintenance models' held-out metrics, per version,
from the registry; `--train` trains every model first (as the nightly task does), each on its
own: a model that cannot train says why on its line, the others still train, and the command
then exits with status 1."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.models import TrainedModel

SHOWN = (
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "false_alarm_rate",
    "false_alarms_per_node_week",
    "rmse_h",
    "mae_h",
    "rmse_cycles",
    "mae_cycles",
)


class Command(BaseCommand):
    help = "Print the maintenance models' metrics on their held-out data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--train", action="store_true", help="train every model first")

    def handle(self, *args: Any, **options: Any) -> None:
        failed: list[str] = []
        if options["train"]:
            from apps.maintenance.services.training import models_train_outcomes

            for outcome in models_train_outcomes():
                line = f"trained {outcome.name}: {outcome.text}"
                self.stdout.write(self.style.ERROR(line) if outcome.failed else line)
                if outcome.failed:
                    failed.append(outcome.name)
        self._show()
        if failed:
            raise CommandError(f"{len(failed)} model(s) failed to train: {', '.join(failed)}")

    def _show(self) -> None:
        rows = TrainedModel.objects.filter(name__startswith="maintenance.").defer("artifact")
        if not rows:
            self.stdout.write("No maintenance models yet: run with --train after import_history.")
            return
        for model in rows:
            metrics = model.metrics or {}
            shown = ", ".join(
                f"{k} {metrics[k]:.3f}" for k in SHOWN if isinstance(metrics.get(k), int | float)
            )
            comparison = metrics.get("comparison", {})
            held = model.training.get("held_out_rows")
            self.stdout.write(
                f"{model.name} v{model.version}{' (active)' if model.is_active else ''}: {shown}"
                f" | held-out rows {held} | {comparison.get('metric')}: baseline "
                f"{comparison.get('baseline')} | {model.decision}"
            )

"""Train the learned duration model now (the nightly Celery task does the same) and print its
held-out error next to the geometric estimate's."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.jobs.duration import duration_model_train


class Command(BaseCommand):
    help = "Train the job duration model on completed parts and print its held-out error."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--min-history",
            type=int,
            default=None,
            help="Completed parts needed (default: JOBS_DURATION_MIN_HISTORY).",
        )

    def handle(self, *args: Any, min_history: int | None, **options: Any) -> None:
        result = duration_model_train(min_history=min_history)
        if isinstance(result, str):
            self.stdout.write(f"No model trained: {result}.")
            return
        metrics, training = result.metrics, result.training
        geometric = metrics["baseline"]["geometric"]
        self.stdout.write(
            f"{result.name} v{result.version}: trained on {training['rows']} parts, "
            f"scored on the {training['held_out_rows']} newest\n"
            f"  learned    MAE {metrics['mae_h']:.3f} h  MAPE {metrics['mape_pct']:.1f}%\n"
            f"  geometric  MAE {geometric['mae_h']:.3f} h  MAPE {geometric['mape_pct']:.1f}%\n"
            f"  {result.decision}"
        )

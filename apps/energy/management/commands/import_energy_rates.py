"""`manage.py import_energy_rates FILE [--source imported|forecast]`

Stores hourly grid prices (and renewable forecasts) from a CSV with the columns site (id or
slug), hour (ISO 8601 with a time zone, on the hour), price, optional renewable_kw and currency.
Bad rows are listed by line number; the good ones are stored (replacing the same hour)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.energy.models import HourlyRate
from apps.energy.services import rates_import_csv

SHOW_REJECTED = 50


class Command(BaseCommand):
    help = "Import hourly energy prices and renewable forecasts per site from a CSV file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--source",
            choices=[HourlyRate.Source.IMPORTED, HourlyRate.Source.FORECAST],
            default=HourlyRate.Source.IMPORTED,
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text.") from exc
        try:
            report = rates_import_csv(by=None, text=text, source=options["source"])
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"Stored {report.stored} hourly rates from {path}.")
        if report.errors:
            self.stdout.write(self.style.WARNING(f"Skipped {len(report.errors)} bad rows:"))
            for bad in report.errors[:SHOW_REJECTED]:
                reasons = "; ".join(f"{k}: {' '.join(v)}" for k, v in bad["errors"].items())
                self.stdout.write(f"  line {bad['line']}: {reasons}")
            if len(report.errors) > SHOW_REJECTED:
                self.stdout.write(f"  … and {len(report.errors) - SHOW_REJECTED} more")

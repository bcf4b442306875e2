"""`manage.py import_history --csv FILE --kind {failures,run_to_failure} [--name NAME]`
`manage.py import_history --csv ai4i2020.csv --preset ai4i2020`

Stores a historian export for training (format: apps/maintenance/services/history.py and the
README). A file with a `cycle` column instead of `time` is a cycle-indexed history: the RUL model
trained on it works and predicts in cycles. Bad rows are listed by line number; the good ones
are stored."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.maintenance.services.history import history_import

PRESETS = ("ai4i2020",)
SHOW_REJECTED = 20


class Command(BaseCommand):
    help = "Import external history (labelled failures or run-to-failure units) for training."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--csv", required=True, type=Path)
        parser.add_argument("--kind", choices=["failures", "run_to_failure"])
        parser.add_argument("--preset", choices=PRESETS, help="a known public data set's layout")
        parser.add_argument("--name", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        rows: Iterable[Mapping[str, str | None]]
        path: Path = options["csv"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        name = options["name"] or path.name
        if options["preset"] == "ai4i2020":
            columns, rows, kind = ai4i_rows(path)
        else:
            if not options["kind"]:
                raise CommandError("Give --kind failures or --kind run_to_failure (or --preset).")
            kind = options["kind"]
            handle = path.open(newline="", encoding="utf-8-sig")
            reader = csv.DictReader(handle)
            columns, rows = list(reader.fieldnames or []), reader
        try:
            report = history_import(
                rows=rows, columns=columns, kind=kind, name=name, source=str(path)
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        history = report.history
        assert history is not None
        self.stdout.write(
            f"Imported {report.stored} rows of {history.units} units as history #{history.pk} "
            f"({kind}, in {history.get_time_unit_display().lower()}); "
            f"signals: {', '.join(history.signals)}"
        )
        if report.rejected:
            self.stdout.write(self.style.WARNING(f"Skipped {len(report.rejected)} bad rows:"))
            for bad in report.rejected[:SHOW_REJECTED]:
                errors = "; ".join(f"{k}: {v}" for k, v in bad["errors"].items())
                self.stdout.write(f"  line {bad['line']}: {errors}")
            if len(report.rejected) > SHOW_REJECTED:
                self.stdout.write(f"  ... and {len(report.rejected) - SHOW_REJECTED} more")


def ai4i_rows(path: Path) -> tuple[list[str], list[dict[str, str | None]], str]:
    """AI4I 2020 in the platform's names: one row per process, the machine as one unit, the
    process number as its cycle (the set has no times; its rows are in process order)."""
    from apps.maintenance.learning.failure import ai4i_table

    table, labels = ai4i_table(path)
    columns = ["unit", "cycle", *table.columns, "failure"]
    rows = []
    for i, (values, label) in enumerate(zip(table.values, labels, strict=True)):
        row: dict[str, str | None] = {"unit": "ai4i-mill", "cycle": str(i + 1)}
        row.update(
            {
                c: ("" if v != v else repr(float(v)))
                for c, v in zip(table.columns, values, strict=True)
            }
        )
        row["failure"] = "1" if label else "0"
        rows.append(row)
    return columns, rows, "failures"

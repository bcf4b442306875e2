"""`manage.py import_telemetry --node ID FILE`

Stores past telemetry of one node with its own timestamps (up to HISTORY_MAX_PAST back, beyond
the live paths' one-year window, on purpose): the administrator's bulk path. FILE is

- JSON: an array of points as the batch API takes them, or one point per line (JSON lines);
  a point without "node" is for --node;
- CSV: a `time` column (ISO 8601 with a timezone, or epoch seconds), the built-in signals by
  their names (temperature_c, vibration_mm_s, ...) and any other column as an extra signal
  (numbers as numbers); an empty cell is no reading.

The live validation applies; bad points are listed by their index in the file (0-based, in
file order) with the reasons, the good ones are stored, points already stored are skipped.
The rules do not run on imported points: `manage.py score_history` replays the agent."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.telemetry.services import MAX_BATCH, telemetry_import_history
from apps.telemetry.validation import SIGNALS

SHOW_REJECTED = 20


def _number(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def csv_points(path: Path, *, node_id: int) -> Iterator[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if "time" not in (reader.fieldnames or []):
            raise CommandError(f"{path}: the CSV needs a `time` column.")
        for row in reader:
            point: dict[str, Any] = {"node": node_id}
            extra: dict[str, Any] = {}
            for column, text in row.items():
                if column is None or text is None or text.strip() == "":
                    continue
                text = text.strip()
                if column == "time":
                    point["time"] = _number(text) if text.replace(".", "", 1).isdigit() else text
                elif column in SIGNALS:
                    point[column] = _number(text)
                else:
                    extra[column] = _number(text)
            if extra:
                point["extra"] = extra
            yield point


def json_points(path: Path, *, node_id: int) -> Iterator[Any]:
    text = path.read_bytes()
    try:
        decoded = orjson.loads(text)
        points = decoded if isinstance(decoded, list) else [decoded]
    except orjson.JSONDecodeError:
        points = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                points.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise CommandError(f"{path}, line {number}: not JSON ({exc}).") from exc
    for point in points:
        if isinstance(point, dict) and "node" not in point:
            point = {**point, "node": node_id}
        yield point


class Command(BaseCommand):
    help = "Import a node's past telemetry (older than the live one-year window) with its times."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--node", type=int, required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        node_id: int = options["node"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        if path.suffix.lower() == ".csv":
            points: Iterator[Any] = csv_points(path, node_id=node_id)
        else:
            points = json_points(path, node_id=node_id)
        accepted = duplicates = 0
        rejected: list[dict[str, Any]] = []
        offset = 0
        chunk: list[Any] = []

        def flush() -> None:
            nonlocal accepted, duplicates, offset
            report = telemetry_import_history(points=chunk, node_id=node_id)
            accepted += report.accepted
            duplicates += len(report.duplicates)
            rejected.extend({**r, "index": r["index"] + offset} for r in report.rejected)
            offset += len(chunk)
            chunk.clear()

        for point in points:
            chunk.append(point)
            if len(chunk) == MAX_BATCH:
                flush()
        if chunk:
            flush()
        if not offset:
            raise CommandError(f"{path} holds no points.")
        self.stdout.write(
            f"Node {node_id}: {accepted} points stored, {duplicates} already stored, "
            f"{len(rejected)} rejected of {offset}."
        )
        for bad in rejected[:SHOW_REJECTED]:
            reasons = "; ".join(f"{k}: {v}" for k, v in bad["errors"].items())
            self.stdout.write(self.style.WARNING(f"  point {bad['index']}: {reasons}"))
        if len(rejected) > SHOW_REJECTED:
            self.stdout.write(f"  ... and {len(rejected) - SHOW_REJECTED} more")

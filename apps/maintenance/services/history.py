"""Import of external history (historian exports) to train on before the platform has its own.

CSV columns (header row required; names are case-sensitive):
- `unit` (or `node`): the machine or unit the row belongs to;
- `time` (ISO 8601, with a zone or UTC) or `cycle` (a number of cycles: operations, flights,
  strokes... counted from the unit's start or last repair, ascending within a unit): when the
  row was measured. A history with `cycle` is in cycles throughout (HistorySet.time_unit): its
  `failure_time` is a cycle, and the RUL model trained on it (`maintenance.rul.cycles`) takes
  windows, cuts and the target in cycles and predicts cycles for nodes that report a `cycle`
  counter in their telemetry's `extra`;
- numeric signal columns, named as the platform names them where they exist (`temperature_c`,
  `ambient_c`, `vibration_mm_s`, `power_kw`, `spindle_rpm`, `torque_nm`, `tool_wear_min`,
  `variant`, ...); any other numeric column is kept as an extra signal; empty cells are missing;
- kind `failures`: `failure` (0/1), whether the unit failed at (or right after) that row;
- kind `run_to_failure`: `failure_time` (same form as `time`/`cycle`), when the unit failed
  (every row of a unit gives the same one; the last row's is used).
Rows that do not parse are reported by their line number and skipped; the rest are stored."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

from apps.maintenance.models import HistoryRow, HistorySet

KEYS = {"unit", "node", "time", "cycle", "failure", "failure_time"}
BATCH = 2000


@dataclass
class ImportReport:
    history: HistorySet | None = None
    stored: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {"line", "errors"}


def _moment(value: str, *, as_cycle: bool) -> float:
    if as_cycle:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError("not a finite number")
        return number
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _row(raw: Mapping[str, str | None], *, kind: str, as_cycle: bool) -> tuple[Any, dict[str, Any]]:
    errors: dict[str, str] = {}
    unit = (raw.get("unit") or raw.get("node") or "").strip()
    if not unit:
        errors["unit"] = "missing"
    moment_raw = raw.get("cycle" if as_cycle else "time") or ""
    t = None
    try:
        t = _moment(moment_raw, as_cycle=as_cycle)
    except (TypeError, ValueError):
        errors["cycle" if as_cycle else "time"] = f"{moment_raw!r} is not a valid value"
    values: dict[str, float] = {}
    for name, cell in raw.items():
        if name is None or name in KEYS or cell is None or not cell.strip():
            continue
        try:
            number = float(cell)
        except ValueError:
            errors[name] = f"{cell!r} is not a number"
            continue
        if not math.isfinite(number):
            errors[name] = "not a finite number"
            continue
        values[name] = number
    failed = failure_t = None
    if kind == HistorySet.Kind.FAILURES:
        flag = (raw.get("failure") or "").strip().lower()
        if flag in {"1", "true", "yes"}:
            failed = True
        elif flag in {"0", "false", "no"}:
            failed = False
        else:
            errors["failure"] = f"{flag!r}: use 0 or 1"
    else:
        when = raw.get("failure_time") or ""
        try:
            failure_t = _moment(when, as_cycle=as_cycle)
        except (TypeError, ValueError):
            errors["failure_time"] = f"{when!r} is not a valid value"
    if not values and "unit" not in errors:
        errors["signals"] = "no numeric signal in this row"
    if errors or t is None:
        return None, errors
    return HistoryRow(unit=unit, t=t, values=values, failed=failed, failure_t=failure_t), {}


def history_import(
    *,
    rows: Iterable[Mapping[str, str | None]],
    columns: list[str],
    kind: str,
    name: str,
    source: str = "",
    imported_by: str = "",
    first_line: int = 2,
) -> ImportReport:
    """Stores the good rows of a CSV-like iterable as one HistorySet; reports the bad ones."""
    if kind not in HistorySet.Kind.values:
        raise ValueError(f"kind must be one of {', '.join(HistorySet.Kind.values)}")
    as_cycle = "cycle" in columns
    needed = {"failure"} if kind == HistorySet.Kind.FAILURES else {"failure_time"}
    missing = sorted(needed - set(columns))
    if not ({"unit", "node"} & set(columns)):
        missing.insert(0, "unit")
    if not ({"time", "cycle"} & set(columns)):
        missing.append("time or cycle")
    if missing:
        raise ValueError(f"missing column(s): {', '.join(missing)}")
    report = ImportReport()
    signals: set[str] = set()
    units: set[str] = set()
    with transaction.atomic():
        history = HistorySet.objects.create(
            name=name[:200],
            kind=kind,
            source=source[:300],
            imported_by=imported_by[:150],
            time_unit=HistorySet.TimeUnit.CYCLES if as_cycle else HistorySet.TimeUnit.SECONDS,
        )
        batch: list[HistoryRow] = []
        for line, raw in enumerate(rows, start=first_line):
            row, errors = _row(raw, kind=kind, as_cycle=as_cycle)
            if row is None:
                report.rejected.append({"line": line, "errors": errors})
                continue
            row.history = history
            signals.update(row.values)
            units.add(row.unit)
            batch.append(row)
            if len(batch) >= BATCH:
                HistoryRow.objects.bulk_create(batch)
                report.stored += len(batch)
                batch = []
        if batch:
            HistoryRow.objects.bulk_create(batch)
            report.stored += len(batch)
        history.signals, history.rows, history.units = sorted(signals), report.stored, len(units)
        history.save(update_fields=["signals", "rows", "units", "updated_at"])
    report.history = history
    return report

"""The one ingest path for telemetry: REST single point, REST batch and the MQTT bridge all call
`telemetry_ingest`. Good points are stored (PostgreSQL COPY; bulk insert on SQLite), exact
duplicates (same node and time) are skipped and reported, bad points are reported by index with
their reasons. Nothing is dropped silently."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import django.dispatch
import psycopg
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from apps.telemetry.live import live_publish, telemetry_group  # noqa: F401 (re-exported)
from apps.telemetry.models import TelemetryPoint
from apps.telemetry.rollups import late_points_note
from apps.telemetry.validation import SIGNALS, CleanPoint, clean_point
from apps.vendors.lifecycle import ACTIVE_STATUSES
from apps.vendors.models import FabricationNode

logger = logging.getLogger(__name__)

MAX_BATCH = 10_000
COLUMNS = ("node_id", "time", "job_id", *SIGNALS, "extra")
COPY_TYPES = ["int8", "timestamptz", "int8", *["float8"] * len(SIGNALS), "jsonb"]

# Sent after commit with node_id and the newest CleanPoint of that node in the request;
# maintenance (threshold rules) and energy receive it. Heavy work goes to Celery.
telemetry_ingested = django.dispatch.Signal()


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: list[int] = field(default_factory=list)  # indexes in the request
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {"index", "errors"}

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": len(self.duplicates),
            "duplicate_indexes": self.duplicates,
            "rejected": self.rejected,
        }


def telemetry_ingest(*, points: Sequence[Any], node_id: int) -> IngestReport:
    """Store `points` written by the device of node `node_id`."""
    report = IngestReport()
    if len(points) > MAX_BATCH:
        raise ValueError(f"At most {MAX_BATCH} points per batch.")
    node = FabricationNode.objects.filter(pk=node_id).only("approval", "status").first()
    if node is None or not node.is_approved or node.status not in ACTIVE_STATUSES:
        reason = "the node is not approved or not in service; it may not stream telemetry"
        report.rejected = [{"index": i, "errors": {"node": reason}} for i in range(len(points))]
        return report

    now = timezone.now()
    seen: dict[datetime, int] = {}
    clean: list[tuple[int, CleanPoint]] = []
    for index, raw in enumerate(points):
        point, errors = clean_point(raw, now=now)
        if point is not None and point.node_id != node_id:
            point, errors = None, {"node": f"this device may write only for node {node_id}"}
        if point is None:
            report.rejected.append({"index": index, "errors": errors})
        elif point.time in seen:
            report.duplicates.append(index)  # the same instant twice in one request
        else:
            seen[point.time] = index
            clean.append((index, point))
    if not clean:
        return report

    times = [p.time for _, p in clean]
    stored = set(
        TelemetryPoint.objects.filter(
            node_id=node_id, time__gte=min(times), time__lte=max(times)
        ).values_list("time", flat=True)
    )
    fresh = []
    for index, point in clean:
        if point.time in stored:
            report.duplicates.append(index)
        else:
            fresh.append((index, point))
    if fresh:
        inserted, refused = _store(fresh)
        report.accepted = len(inserted)
        report.duplicates.extend(i for i, p in fresh if p.time not in inserted and i not in refused)
        if refused:
            report.rejected.extend({"index": i, "errors": {"point": r}} for i, r in refused.items())
            report.rejected.sort(key=lambda rejection: rejection["index"])
        if inserted:
            newest = max((p for _, p in fresh if p.time in inserted), key=lambda p: p.time)
            _announce(node_id, newest)
            late_points_note(times=inserted, now=now)  # TimescaleDB: rollups to re-materialize
    report.duplicates.sort()
    return report


def _rows(points: Iterable[tuple[int, CleanPoint]]) -> Iterable[tuple[Any, ...]]:
    for _, p in points:
        yield (p.node_id, p.time, p.job_id, *p.values, Jsonb(p.extra))


# What the database (or the driver) raises for a value it cannot store. Validation keeps such
# values out; should one slip through, it costs its own point, never the batch.
# IntegrityError: only from the conflict-skipping insert, where it cannot mean a duplicate.
REFUSED_BY_DATABASE = (DataError, IntegrityError, psycopg.DataError, OverflowError)


def _store(points: list[tuple[int, CleanPoint]]) -> tuple[set[datetime], dict[int, str]]:
    """Insert the points. Returns the times actually stored (a concurrent writer may have
    stored some of them in the meantime: those are duplicates, not errors) and, by request
    index, the points the database refused. A refused batch is bisected to find them, so one
    bad point costs about 2 log2(n) extra bulk writes and the good points are all stored."""
    try:
        return _store_all(points), {}
    except REFUSED_BY_DATABASE as exc:
        if len(points) == 1:
            index, point = points[0]
            logger.warning(
                "The database refused telemetry point %s of node %s: %s",
                index,
                point.node_id,
                exc,
            )
            cause = type(
                exc.__cause__ or exc
            ).__name__  # psycopg's class, e.g. NumericValueOutOfRange
            reason = f"the database refused this point ({cause}); it was not stored"
            return set(), {index: reason}
    middle = len(points) // 2
    stored, refused = _store(points[:middle])
    stored_later, refused_later = _store(points[middle:])
    return stored | stored_later, refused | refused_later


def _store_all(points: list[tuple[int, CleanPoint]]) -> set[datetime]:
    if connection.vendor == "postgresql":
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                raw = cursor.cursor  # the psycopg cursor under Django's wrapper
                sql = f"COPY telemetry_point ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
                with raw.copy(sql) as copy:
                    copy.set_types(COPY_TYPES)
                    for row in _rows(points):
                        copy.write_row(row)
            return {p.time for _, p in points}
        except (IntegrityError, psycopg.IntegrityError):  # raw cursor: psycopg's own class
            return _insert_skipping_conflicts(points)
    try:
        with transaction.atomic():
            TelemetryPoint.objects.bulk_create(_models(points))
        return {p.time for _, p in points}
    except IntegrityError:
        return _insert_skipping_conflicts(points)


def _models(points: Iterable[tuple[int, CleanPoint]]) -> list[TelemetryPoint]:
    return [
        TelemetryPoint(
            node_id=p.node_id,
            time=p.time,
            job_id=p.job_id,
            extra=p.extra,
            **dict(zip(SIGNALS, p.values, strict=True)),
        )
        for _, p in points
    ]


def _insert_skipping_conflicts(points: list[tuple[int, CleanPoint]]) -> set[datetime]:
    placeholders = ", ".join(["%s"] * len(COLUMNS))
    sql = (
        f"INSERT INTO telemetry_point ({', '.join(COLUMNS)}) VALUES ({placeholders}) "
        "ON CONFLICT (node_id, time) DO NOTHING"
    )
    stored: set[datetime] = set()
    with transaction.atomic(), connection.cursor() as cursor:
        for (_, point), row in zip(points, _rows(points), strict=True):
            if connection.vendor != "postgresql":
                # Store the time exactly as the ORM does, or the key would not match.
                time = connection.ops.adapt_datetimefield_value(point.time)
                row = (row[0], time, *row[2:-1], _json(point.extra))
            cursor.execute(sql, row)
            if cursor.rowcount == 1:
                stored.add(point.time)
    return stored


def _json(value: dict[str, Any]) -> str:
    import orjson

    return orjson.dumps(value).decode()


def _announce(node_id: int, newest: CleanPoint) -> None:
    payload = {
        "type": "telemetry",
        "node": node_id,
        "time": newest.time.isoformat(),
        **{s: v for s, v in zip(SIGNALS, newest.values, strict=True) if v is not None},
        "extra": newest.extra,
    }
    # On commit, so nobody sees a point that was rolled back; coalesced per node (live.py).
    transaction.on_commit(lambda: live_publish(node_id, payload))
    transaction.on_commit(lambda: _tell_receivers(node_id, newest))


def _tell_receivers(node_id: int, newest: CleanPoint) -> None:
    """The points are stored: a receiver that fails is logged and never fails the request (the
    gateway would send the stored points again, and a 500 would hide that they were kept)."""
    results = telemetry_ingested.send_robust(sender=TelemetryPoint, node_id=node_id, point=newest)
    for receiver, result in results:
        if isinstance(result, Exception):
            logger.error(
                "telemetry receiver %s failed for node %s",
                getattr(receiver, "__qualname__", receiver),
                node_id,
                exc_info=result,
            )

"""The one ingest path for telemetry: REST single point, REST batch and the MQTT bridge all call
`telemetry_ingest` (points as Python objects) or `telemetry_ingest_json` (the JSON body as
bytes, decoded and checked by msgspec in one pass). Good points are stored (PostgreSQL binary
COPY; bulk insert on SQLite), exact duplicates (same node and time) are skipped and reported,
bad points are reported by index with their reasons. Nothing is dropped silently."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import django.dispatch
import numpy as np
import numpy.typing as npt
import orjson
import psycopg
from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from apps.core.metrics import POINTS_DUPLICATE, POINTS_REJECTED, POINTS_STORED
from apps.telemetry.after_ingest import ReceiverRunner
from apps.telemetry.live import live_publish, telemetry_group  # noqa: F401 (re-exported)
from apps.telemetry.models import TelemetryPoint
from apps.telemetry.pgcopy import COLUMNS, copy_data
from apps.telemetry.rollups import late_points_note
from apps.telemetry.validation import (
    HISTORY_MAX_PAST,
    SIGNALS,
    BatchShapeError,
    CleanBatch,
    CleanPoint,
    Rejections,
    from_micros,
    micros,
    points_clean,
    points_clean_json,
    points_decode,
)
from apps.vendors.lifecycle import ACTIVE_STATUSES
from apps.vendors.models import FabricationNode

logger = logging.getLogger(__name__)

MAX_BATCH = 10_000
COPY_TYPES = ["int8", "timestamptz", "int8", *["float8"] * len(SIGNALS), "jsonb"]
COPY_SQL = f"COPY telemetry_point ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
__all__ = ["COLUMNS", "COPY_TYPES", "BatchShapeError"]  # the benchmark's COPY, the API's errors

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
    if len(points) > MAX_BATCH:
        raise ValueError(f"At most {MAX_BATCH} points per batch.")
    refused = _node_refusal(node_id, len(points))
    if refused is not None:
        return _counted(refused, "live")
    batch, rejected = points_clean(points, node_id=node_id, now=timezone.now())
    return _counted(_ingest(batch, rejected), "live")


def telemetry_ingest_json(*, body: bytes, node_id: int) -> IngestReport:
    """Store the points of a JSON `body` (an array of points, or {"points": [...]}, other keys
    ignored) written by the device of node `node_id`: the report telemetry_ingest gives for
    the points orjson decodes, without building them as Python dicts first.

    Raises orjson.JSONDecodeError for a body that is not JSON and BatchShapeError (its message
    is what the batch API answers) for one without a list of 1 to MAX_BATCH points."""
    points, shaped = points_decode(body)
    if not points:
        raise BatchShapeError("The batch is empty.")
    if len(points) > MAX_BATCH:
        raise BatchShapeError(f"At most {MAX_BATCH} points per batch; got {len(points)}.")
    refused = _node_refusal(node_id, len(points))
    if refused is not None:
        return _counted(refused, "live")
    now = timezone.now()
    batch, rejected = points_clean_json(body, points, shaped, node_id=node_id, now=now)
    return _counted(_ingest(batch, rejected), "live")


def telemetry_import_history(*, points: Sequence[Any], node_id: int) -> IngestReport:
    """Store past telemetry of node `node_id` with its own timestamps: the administrator's bulk
    path (import_telemetry), which reaches HISTORY_MAX_PAST back instead of the live paths' one
    year, on purpose. The live paths' validation and storage, and the same report (bad points by
    index, duplicates skipped); but the points are history, not news: no live view hears of
    them and the threshold rules do not run on them (score_history replays the agent over
    them). Any node that exists may receive history, in service or not."""
    if len(points) > MAX_BATCH:
        raise ValueError(f"At most {MAX_BATCH} points per batch.")
    if not FabricationNode.objects.filter(pk=node_id).exists():
        reason = f"no node {node_id}"
        return IngestReport(
            rejected=[{"index": i, "errors": {"node": reason}} for i in range(len(points))]
        )
    batch, rejected = points_clean(
        points, node_id=node_id, now=timezone.now(), max_past=HISTORY_MAX_PAST
    )
    return _counted(_ingest(batch, rejected, announce=False), "history")


class StreamingNodes:
    """Nodes seen approved and in service, for DEVICE_AUTH_CACHE_SECONDS per process: the check
    was a query on every ingest request. Only the allowed are kept (a refused node is looked up
    every time, so one approved or put back in service streams at once); a node saved in this
    process is forgotten at once (TelemetryConfig.ready), one taken out of service elsewhere
    stops streaming here within the TTL, as its device token's check does (fast_path.py)."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self.expires: dict[int, float] = {}
        self.max_entries = max_entries

    def allowed(self, node_id: int, now: float) -> bool:
        return self.expires.get(node_id, 0.0) > now

    def remember(self, node_id: int, now: float) -> None:
        ttl = float(settings.DEVICE_AUTH_CACHE_SECONDS)
        if ttl <= 0:
            return
        if len(self.expires) >= self.max_entries:
            self.expires.clear()
        self.expires[node_id] = now + ttl

    def forget(self, *args: Any, **kwargs: Any) -> None:
        self.expires.clear()


streaming_nodes = StreamingNodes()


METRIC_FIELDS = frozenset({"node", "time", "job_id", "units", "extra", "point", *SIGNALS})


def _counted(report: IngestReport, path: str) -> IngestReport:
    """Counts the report's points on /metrics (apps/core/metrics.py)."""
    if report.accepted:
        POINTS_STORED.labels(path).inc(report.accepted)
    if report.duplicates:
        POINTS_DUPLICATE.labels(path).inc(len(report.duplicates))
    for rejection in report.rejected:
        field = str(next(iter(rejection.get("errors") or {}), "point")).split(".")[0]
        # (an unknown field's name is the sender's: never a label of its own)
        POINTS_REJECTED.labels(path, field if field in METRIC_FIELDS else "other").inc()
    return report


def _node_refusal(node_id: int, count: int) -> IngestReport | None:
    """A report rejecting all `count` points when the node may not stream, else None."""
    if streaming_nodes.allowed(node_id, time.monotonic()):
        return None
    node = FabricationNode.objects.filter(pk=node_id).only("approval", "status").first()
    if node is not None and node.is_approved and node.status in ACTIVE_STATUSES:
        streaming_nodes.remember(node_id, time.monotonic())
        return None
    reason = "the node is not approved or not in service; it may not stream telemetry"
    return IngestReport(rejected=[{"index": i, "errors": {"node": reason}} for i in range(count)])


def _ingest(batch: CleanBatch, rejected: Rejections, *, announce: bool = True) -> IngestReport:
    report = IngestReport(rejected=rejected)
    if not len(batch):
        return report
    # The same instant twice in one request: the first is stored, the others are duplicates
    # (the batch is ordered by index and a stable sort keeps that order among equal times).
    order = np.argsort(batch.times, kind="stable")
    repeated = np.zeros(len(batch), dtype=bool)
    repeated[order[1:]] = batch.times[order[1:]] == batch.times[order[:-1]]
    duplicates = batch.indexes[repeated].tolist()
    if duplicates:
        batch = batch.take(~repeated)

    stored, refused = _store_new(batch)
    report.accepted = int(stored.sum())
    if refused:
        not_refused = ~np.isin(batch.indexes, list(refused))
        report.rejected.extend({"index": i, "errors": {"point": r}} for i, r in refused.items())
        report.rejected.sort(key=lambda rejection: rejection["index"])
    else:
        not_refused = np.ones(len(batch), dtype=bool)
    duplicates += batch.indexes[~stored & not_refused].tolist()
    if report.accepted:
        node_id = batch.node_id
        newest = batch.point(int(np.argmax(np.where(stored, batch.times, np.iinfo(np.int64).min))))
        if announce:
            _announce(node_id, newest)
        # TimescaleDB: hours of late points for the rollups to re-materialize (rollups.py)
        kept = batch.times[stored]
        late_points_note(
            times=(from_micros(int(kept.min())), from_micros(int(kept.max()))), now=timezone.now()
        )
    report.duplicates = sorted(duplicates)
    return report


# What the database (or the driver) raises for a value it cannot store. Validation keeps such
# values out; should one slip through, it costs its own point, never the batch.
# IntegrityError: only from the conflict-skipping insert, where it cannot mean a duplicate.
REFUSED_BY_DATABASE = (DataError, IntegrityError, psycopg.DataError, OverflowError)
Stored = npt.NDArray[np.bool_]  # per point of a batch: stored by this request


def _store_new(batch: CleanBatch) -> tuple[Stored, dict[int, str]]:
    """Store the points of `batch` that are not stored yet; the others are duplicates (False
    in the mask). On PostgreSQL the batch is first COPYed as it is, in one round trip: a
    point already stored makes that COPY fail as a whole, and only then are the stored ones
    looked up and the rest stored (a gateway resending a batch it got no answer for)."""
    if connection.vendor == "postgresql":
        try:
            _copy(batch)
            return np.ones(len(batch), dtype=bool), {}
        except (IntegrityError, psycopg.IntegrityError, *REFUSED_BY_DATABASE):
            pass  # a point already stored, or one the database refuses: sorted out below
    stored_before = np.isin(batch.times, _stored_times(batch))
    if not stored_before.any():
        return _store(batch)
    stored = np.zeros(len(batch), dtype=bool)
    stored[~stored_before], refused = _store(batch.take(~stored_before))
    return stored, refused


def _stored_times(batch: CleanBatch) -> npt.NDArray[np.int64]:
    """The times (microseconds) of the node's stored points within the batch's time span."""
    first, last = from_micros(int(batch.times.min())), from_micros(int(batch.times.max()))
    times = TelemetryPoint.objects.filter(
        node_id=batch.node_id, time__gte=first, time__lte=last
    ).values_list("time", flat=True)
    return np.array([micros(t) for t in times], dtype=np.int64)


def _store(batch: CleanBatch) -> tuple[Stored, dict[int, str]]:
    """Insert the points. Returns which were actually stored (a concurrent writer may have
    stored some of them in the meantime: those are duplicates, not errors) and, by request
    index, the points the database refused. A refused batch is bisected to find them, so one
    bad point costs about 2 log2(n) extra bulk writes and the good points are all stored."""
    try:
        return _store_all(batch), {}
    except REFUSED_BY_DATABASE as exc:
        if len(batch) == 1:
            index = int(batch.indexes[0])
            logger.warning(
                "The database refused telemetry point %s of node %s: %s",
                index,
                batch.node_id,
                exc,
            )
            cause = type(
                exc.__cause__ or exc
            ).__name__  # psycopg's class, e.g. NumericValueOutOfRange
            reason = f"the database refused this point ({cause}); it was not stored"
            return np.zeros(1, dtype=bool), {index: reason}
    middle = len(batch) // 2
    stored, refused = _store(batch.take(slice(None, middle)))
    stored_later, refused_later = _store(batch.take(slice(middle, None)))
    return np.concatenate([stored, stored_later]), refused | refused_later


def _store_all(batch: CleanBatch) -> Stored:
    if connection.vendor == "postgresql":
        try:
            _copy(batch)
            return np.ones(len(batch), dtype=bool)
        except (IntegrityError, psycopg.IntegrityError):  # raw cursor: psycopg's own class
            return _insert_skipping_conflicts(batch)
    try:
        with transaction.atomic():
            TelemetryPoint.objects.bulk_create(_models(batch))
        return np.ones(len(batch), dtype=bool)
    except IntegrityError:
        return _insert_skipping_conflicts(batch)


def _copy(batch: CleanBatch) -> None:
    """One binary COPY of the whole batch. Outside a transaction it is one statement, its own
    transaction (no BEGIN and COMMIT round trips); inside one, a savepoint keeps a failed COPY
    from spoiling the caller's transaction. With TELEMETRY_SYNCHRONOUS_COMMIT off, a COPY that
    is its own transaction commits without waiting for the WAL flush (settings.py says what
    that risks); a caller's transaction keeps its own commit."""
    data = copy_data(batch)
    relaxed = not settings.TELEMETRY_SYNCHRONOUS_COMMIT and not connection.in_atomic_block
    scope = (
        transaction.atomic() if connection.in_atomic_block or relaxed else contextlib.nullcontext()
    )
    with scope, connection.cursor() as cursor:
        if relaxed:
            cursor.execute(ASYNCHRONOUS_COMMIT_SQL)
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        with raw.copy(COPY_SQL) as copy:
            copy.write(data)


ASYNCHRONOUS_COMMIT_SQL = "SET LOCAL synchronous_commit TO OFF"


def _rows(batch: CleanBatch) -> list[tuple[Any, ...]]:
    """The batch as parameter rows (the row-by-row paths)."""
    return [
        (p.node_id, p.time, p.job_id, *p.values, Jsonb(p.extra))
        for p in (batch.point(row) for row in range(len(batch)))
    ]


def _models(batch: CleanBatch) -> list[TelemetryPoint]:
    return [
        TelemetryPoint(
            node_id=p.node_id,
            time=p.time,
            job_id=p.job_id,
            extra=p.extra,
            **dict(zip(SIGNALS, p.values, strict=True)),
        )
        for p in (batch.point(row) for row in range(len(batch)))
    ]


def _insert_skipping_conflicts(batch: CleanBatch) -> Stored:
    placeholders = ", ".join(["%s"] * len(COLUMNS))
    sql = (
        f"INSERT INTO telemetry_point ({', '.join(COLUMNS)}) VALUES ({placeholders}) "
        "ON CONFLICT (node_id, time) DO NOTHING"
    )
    stored = np.zeros(len(batch), dtype=bool)
    with transaction.atomic(), connection.cursor() as cursor:
        for position, row in enumerate(_rows(batch)):
            if connection.vendor != "postgresql":
                # Store the time exactly as the ORM does, or the key would not match.
                time = connection.ops.adapt_datetimefield_value(row[1])
                row = (row[0], time, *row[2:-1], _json(row[-1].obj))
            cursor.execute(sql, row)
            stored[position] = cursor.rowcount == 1
    return stored


def _json(value: dict[str, Any]) -> str:
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
    transaction.on_commit(lambda: _after_commit(node_id, newest))


def _after_commit(node_id: int, newest: CleanPoint) -> None:
    if settings.TELEMETRY_RECEIVERS_IN_BACKGROUND:
        receiver_runner.submit(node_id, newest)  # beside the request (after_ingest.py)
    else:
        _tell_receivers(node_id, newest)


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


receiver_runner = ReceiverRunner(
    deliver=_tell_receivers,
    window_s=getattr(settings, "TELEMETRY_RECEIVERS_WINDOW_MS", 250) / 1000,
)

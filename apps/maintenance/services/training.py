"""Training the maintenance agent's models from the platform's own labelled history and from
imported history, and registering them (apps.core.ml: a new version becomes active only if it
is not worse than the active one on the same held-out rows). Runs in Celery (nightly), never on
a request.

Labels come from confirmed failures: tickets resolved with was_failure=True (the failure is
dated at the ticket's opening) and emergency maintenance windows (dated at their start)."""

from __future__ import annotations

import hashlib
import logging
import math
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import numpy as np
import sklearn
import xgboost as xgb
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Avg, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from apps.core.labels import label_with_unit
from apps.core.ml import Comparison, model_active, model_register
from apps.core.models import TrainedModel
from apps.maintenance.cadence import (
    ANOMALY_STEP_MIN_S,
    ANOMALY_WINDOW_MIN_S,
    anomaly_window,
    cadence_learn,
    cadence_of,
    sustain_for,
)
from apps.maintenance.learning import anomaly, rul
from apps.maintenance.learning.calibration import calibration_report
from apps.maintenance.learning.failure import (
    FailureModel,
    failure_metrics,
    failure_model_train,
    stratified_split,
)
from apps.maintenance.learning.features import ENGINEERED, Table
from apps.maintenance.models import (
    UNRESOLVED,
    HistoryRow,
    HistorySet,
    MaintenanceWindow,
    NodeHealth,
    Ticket,
)
from apps.telemetry import rollups
from apps.telemetry.models import SIGNAL_LABELS, TelemetryPoint
from apps.telemetry.selectors import SIGNALS, point_range_downsampled
from apps.vendors.models import FabricationNode

logger = logging.getLogger(__name__)

FAILURE = "maintenance.failure"
RUL = "maintenance.rul"  # RUL in hours, from timestamped histories
RUL_CYCLES = "maintenance.rul.cycles"  # RUL in cycles, from cycle-indexed histories
# bump when the failure model's training changes (failure-2: held-out calibration, input
# ranges, run-to-failure histories as labelled rows)
FAILURE_CODE_VERSION = "failure-2"
ANOMALY_CODE_VERSION = "anomaly-3"  # likewise for the anomaly detectors (3: windows in samples)
HORIZON_H = 24.0  # the failure model predicts a failure within this many hours
HISTORY_DAYS = 90
MIN_POSITIVES = 10
# The detector's window, step and history are in samples of each node's cadence
# (apps.maintenance.cadence.anomaly_window), never less than a fast sensor's 10-minute windows
# 5 minutes apart over the last week.
ANOMALY_SLOT_S = 30.0  # telemetry averaged over 30 s slots before windowing
ANOMALY_MIN_WINDOWS = 50
RUL_MIN_UNITS = 4
RUN_ROW_STEP_S = 1800.0  # run-to-failure readings the failure model learns from: one per 30 min
RUL_HISTORY_DAYS = 30


def anomaly_name(kind: str) -> str:
    return f"maintenance.anomaly.{kind}"


def failure_events(*, since: datetime | None = None) -> dict[int, list[datetime]]:
    """node -> times of confirmed failures, oldest first."""
    events: dict[int, list[datetime]] = defaultdict(list)
    tickets = Ticket.objects.filter(was_failure=True)
    windows = MaintenanceWindow.objects.filter(kind=MaintenanceWindow.Kind.EMERGENCY)
    if since is not None:
        tickets = tickets.filter(created_at__gte=since)
        windows = windows.filter(starts_at__gte=since)
    for node_id, at in tickets.values_list("node_id", "created_at"):
        events[node_id].append(at)
    for node_id, at in windows.values_list("node_id", "starts_at"):
        events[node_id].append(at)
    return {node: sorted(times) for node, times in events.items()}


# --- Failure classifier --------------------------------------------------------------------


def _union(tables: list[tuple[Table, np.ndarray]]) -> tuple[Table, np.ndarray]:
    columns: list[str] = []
    for table, _ in tables:
        columns.extend(c for c in table.columns if c not in columns)
    blocks = []
    for table, _ in tables:
        block = np.full((len(table), len(columns)), np.nan)
        for j, name in enumerate(columns):
            if name in table.columns:
                block[:, j] = table.column(name)
        blocks.append(block)
    labels = np.concatenate([y for _, y in tables]) if tables else np.empty(0)
    values = np.vstack(blocks) if blocks else np.empty((0, len(columns)))
    return Table(columns, values), labels


def imported_failures() -> list[tuple[Table, np.ndarray, HistorySet]]:
    out = []
    for history in HistorySet.objects.filter(kind=HistorySet.Kind.FAILURES):
        rows = list(history.records.values_list("values", "failed"))
        if not rows:
            continue
        columns = list(history.signals)
        values = np.array(
            [[float(v.get(c, math.nan)) for c in columns] for v, _ in rows], dtype=float
        )
        labels = np.array([1.0 if failed else 0.0 for _, failed in rows])
        out.append((Table(columns, values), labels, history))
    return out


def run_failure_rows(runs: list[rul.Run]) -> tuple[Table, np.ndarray, np.ndarray]:
    """The readings of run-to-failure histories as labelled rows for the failure model, one
    per RUN_ROW_STEP_S of each unit (neighbours minutes apart add little and multiply the
    training time): 1 within HORIZON_H hours before the unit's failure. Returns the table,
    the labels and each row's unit (rows of one unit are neighbours in time, held out
    together)."""
    parts, units = [], []
    for run in runs:
        steps = np.diff(run.times_s)
        stride = max(1, round(RUN_ROW_STEP_S / float(np.median(steps)))) if len(steps) else 1
        times, values = run.times_s[::-stride][::-1], run.values[::-stride][::-1]  # the last kept
        labels = (run.failure_s - times <= HORIZON_H * 3600).astype(float)
        parts.append((Table(list(run.signals), values), labels))
        units.append(np.full(len(labels), run.unit, dtype=object))
    table, labels = _union(parts)
    return table, labels, np.concatenate(units) if units else np.empty(0, dtype=object)


def failure_split(
    labels: np.ndarray, units: np.ndarray, *, test_share: float = 0.2, seed: int = 42
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, held out): a stratified share of the rows that stand alone (unit
    ""), and whole units of the others, so no held-out row has its neighbour in time among the
    training rows. Without units, the stratified split of every row."""
    loose, grouped = np.flatnonzero(units == ""), np.flatnonzero(units != "")
    train, test = [], []
    if len(loose):
        positives = int(labels[loose].sum())
        if min(positives, len(loose) - positives) >= 2:
            kept, held = stratified_split(labels[loose], test_share=test_share, seed=seed)
            train, test = [loose[kept]], [loose[held]]
        else:
            train = [loose]
    if len(grouped):
        names = sorted(set(units[grouped]))
        count = min(max(1, round(len(names) * test_share)), len(names) - 1)
        order = np.random.default_rng(seed).permutation(len(names))
        held_out = np.isin(units[grouped], [names[i] for i in order[:count]])
        train.append(grouped[~held_out])
        test.append(grouped[held_out])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test or [np.empty(0, int)]))


def input_ranges(table: Table, columns: list[str]) -> dict[str, dict[str, float]]:
    """Per input, the share of training rows that held it and the 0.5-99.5 percentile range
    of its values: what the model may speak for (services/failure_risk.py)."""
    out = {}
    for name in columns:
        column = table.column(name)
        seen = column[np.isfinite(column)]
        if not len(seen):
            continue
        low, high = np.percentile(seen, [0.5, 99.5])
        out[name] = {
            "present": round(len(seen) / max(len(column), 1), 4),
            "low": round(float(low), 4),
            "high": round(float(high), 4),
        }
    return out


# A model is asked only about readings like those it learnt from: an input that every
# training row held (this share) must be reported, and each one reported must lie within its
# training range (0.5-99.5 percentiles) widened by this share of it on either side.
REQUIRED_SHARE = 0.99
RANGE_MARGIN = 0.1


def inputs_inapplicable(*, row: TrainedModel, levels: Table) -> str:
    """Why the model `row` may not be asked about a node's `levels` (one row), or "" when it
    may: an input every training row held is not reported, or a reading lies outside what it
    was trained on (a mill model asked about a printer, a slow machine's model about a fast
    one: its trees would answer from their outermost leaves, with any confidence). Versions
    stored before their input ranges were recorded are asked about anything."""
    inputs: dict[str, dict[str, float]] = (row.training or {}).get("inputs") or {}
    absent, outside = [], []
    for name, seen in inputs.items():
        label = SIGNAL_LABELS.get(name, name)
        if not levels.has(name):
            if seen["present"] >= REQUIRED_SHARE:
                absent.append(label)
            continue
        value = float(levels.column(name)[0])
        if math.isnan(value):
            if seen["present"] >= REQUIRED_SHARE:
                absent.append(label)
            continue
        margin = RANGE_MARGIN * (seen["high"] - seen["low"])
        if not seen["low"] - margin <= value <= seen["high"] + margin:
            outside.append(
                f"{label} {value:.4g} (trained on {seen['low']:.4g} to {seen['high']:.4g})"
            )
    reasons = []
    if absent:
        reasons.append(f"the node does not report {', '.join(absent)}, which its training held")
    if outside:
        reasons.append(f"the node's readings are outside its training data: {'; '.join(outside)}")
    return "; ".join(reasons)


def run_input_ranges(runs: list[rul.Run]) -> dict[str, dict[str, float]]:
    """input_ranges over every reading of run-to-failure histories (their signals may differ)."""
    signals = sorted({s for run in runs for s in run.signals})
    rows = sum(len(run.times_s) for run in runs)
    values = np.full((rows, len(signals)), np.nan)
    at = 0
    for run in runs:
        for j, name in enumerate(signals):
            if name in run.signals:
                values[at : at + len(run.times_s), j] = run.values[:, run.signals.index(name)]
        at += len(run.times_s)
    return input_ranges(Table(signals, values), signals)


def platform_failures(*, now: datetime) -> tuple[Table, np.ndarray, int]:
    """The platform's own history: each node's hourly mean of every signal, labelled 1 when a
    confirmed failure followed within HORIZON_H hours. Returns the table, labels, and how many
    distinct failures labelled it."""
    since = now - timedelta(days=HISTORY_DAYS)
    events = failure_events(since=since)
    rows, labels = [], []
    horizon = timedelta(hours=HORIZON_H)
    used: set[tuple[int, datetime]] = set()
    for row in hourly_means(since=since):
        end = row["hour"] + timedelta(hours=1)
        failed = False
        for at in events.get(row["node_id"], []):
            if end <= at <= end + horizon:
                failed = True
                used.add((row["node_id"], at))
                break
        rows.append([math.nan if row[s] is None else float(row[s]) for s in SIGNALS])
        labels.append(1.0 if failed else 0.0)
    values = np.array(rows, dtype=float) if rows else np.empty((0, len(SIGNALS)))
    return Table(list(SIGNALS), values), np.array(labels), len(used)


def hourly_means(*, since: datetime) -> list[dict[str, Any]]:
    """Every node's mean of every signal per hour since `since`, ordered by node and hour. On
    TimescaleDB from the hourly continuous aggregate (apps.telemetry.rollups: whole hours from
    telemetry_hourly, the first partial hour from the raw rows, the same means), else grouped
    from the raw rows: 90 days of every node is the largest telemetry read training makes."""
    if rollups.serves("hour"):
        # Open-ended like the raw read: past any point ingest accepts (validation.MAX_FUTURE).
        end = max(timezone.now(), since) + timedelta(days=1)
        return [
            {"node_id": r["node_id"], "hour": r["bucket"], **{s: r[f"{s}_avg"] for s in SIGNALS}}
            for r in rollups.rollup_buckets(node_id=None, start=since, end=end, bucket="hour")
        ]
    hours = (
        TelemetryPoint.objects.filter(time__gte=since)
        .annotate(hour=TruncHour("time"))
        .values("node_id", "hour")
        .annotate(**{s: Avg(s) for s in SIGNALS})
        .order_by("node_id", "hour")
    )
    return [dict(row) for row in hours]


def _f1_shortfall(metrics: dict[str, Any]) -> float:
    return round(1.0 - float(metrics["f1"]), 6)


def failure_model_train_and_register(
    *, now: datetime | None = None, params: dict[str, Any] | None = None
) -> TrainedModel | str:
    """Trains on imported labelled failures, the readings of imported run-to-failure histories
    (in hours; labelled by failure within HORIZON_H) and the platform's own history; held-out:
    a stratified 20% of single rows and 20% of the run-to-failure units (seed 42). Compared on
    1 - F1 of the failure class with the active model and with flagging every row (the
    baseline). Stored with the version: the held-out rows' reliability (bins with the interval
    of their observed failure rate, Brier score: learning/calibration.py), the interval of
    every probability the model gives; and each input's range in training, outside which the
    model is not asked (services/failure_risk.py)."""
    now = now or timezone.now()
    parts: list[tuple[Table, np.ndarray]] = []
    groups: list[np.ndarray] = []
    sources: list[str] = []
    for table, labels, history in imported_failures():
        parts.append((table, labels))
        groups.append(np.full(len(labels), "", dtype=object))
        sources.append(f"history #{history.pk} {history.name} ({len(table)} rows)")
    runs = imported_runs(time_unit=rul.HOURS)
    if runs:
        run_table, run_labels, run_units = run_failure_rows(runs)
        parts.append((run_table, run_labels))
        groups.append(run_units)
        sources.append(
            f"run-to-failure histories ({len(runs)} units, {len(run_table)} rows; failure "
            f"within {HORIZON_H:g} h of a unit's end)"
        )
    own, own_labels, own_failures = platform_failures(now=now)
    if len(own):
        parts.append((own, own_labels))
        groups.append(np.full(len(own_labels), "", dtype=object))
        sources.append(
            f"platform telemetry, hourly, last {HISTORY_DAYS} days "
            f"({len(own)} rows, {own_failures} confirmed failures)"
        )
    table, labels = _union(parts)
    units = np.concatenate(groups) if groups else np.empty(0, dtype=object)
    positives = int(labels.sum())
    if positives < MIN_POSITIVES or positives == len(labels):
        return (
            f"not enough labelled history: {positives} failure rows of {len(labels)}; "
            f"{MIN_POSITIVES} needed (import some with manage.py import_history)"
        )
    digest = hashlib.sha256(repr((table.columns, params)).encode())
    digest.update(np.ascontiguousarray(table.values).tobytes())
    digest.update(np.ascontiguousarray(labels).tobytes())
    digest.update("\0".join(units.tolist()).encode())
    fingerprint = digest.hexdigest()
    code = f"{FAILURE_CODE_VERSION} xgboost {xgb.__version__}"
    unchanged = _unchanged(FAILURE, fingerprint=fingerprint, code=code)
    if unchanged:
        return unchanged
    train_idx, test_idx = failure_split(labels, units, test_share=0.2, seed=42)
    train = Table(table.columns, table.values[train_idx])
    test = Table(table.columns, table.values[test_idx])
    model = failure_model_train(train, labels[train_idx], seed=42, params=params)
    scores = failure_metrics(model, test, labels[test_idx]).as_dict()
    # the stored model never saw the held-out rows: their reliability is its interval
    calibration = calibration_report(model.probability(test), labels[test_idx])
    prevalence = float(labels[test_idx].mean())
    baseline_f1 = 2 * prevalence / (1 + prevalence)  # flag every row: recall 1
    active = model_active(FAILURE)
    active_shortfall = None
    if active is not None:
        previous = failure_model_load(active)
        active_shortfall = _f1_shortfall(
            failure_metrics(previous, test, labels[test_idx]).as_dict()
        )
    return model_register(
        name=FAILURE,
        algorithm=f"xgboost {xgb.__version__} classifier, failure within {HORIZON_H:g} h",
        artifact=model.to_bytes(),
        features=list(model.features),
        metrics={
            **scores,
            "brier": calibration["brier"],
            "baseline": {
                "flag_everything_f1": round(baseline_f1, 4),
                "brier_of_the_failure_rate": calibration["brier_baseline"],
            },
            "calibration": calibration,
        },
        training={
            "rows": int(len(train_idx)),
            "held_out_rows": int(len(test_idx)),
            "held_out": "stratified 20% of single rows, 20% of run-to-failure units "
            "(all their rows), seed 42",
            "inputs": input_ranges(
                train, [name for name in model.features if name not in ENGINEERED]
            ),
            "positives": positives,
            "sources": sources,
            "to": now.isoformat(),
            "threshold": float(model.threshold),
            "horizon_h": HORIZON_H,
            "fingerprint": fingerprint,
            "code": code,
        },
        comparison=Comparison(
            metric="1 - f1",
            candidate=_f1_shortfall(scores),
            baseline=round(1 - baseline_f1, 6),
            active=active_shortfall,
        ),
    )


# loaded models by (name, row id), one cache per kind of model
_failure_cache: dict[tuple[str, int], FailureModel] = {}
_anomaly_cache: dict[tuple[str, int], anomaly.AnomalyModel] = {}
_rul_cache: dict[tuple[str, int], rul.RulModel] = {}


def failure_model_load(row: TrainedModel) -> FailureModel:
    key = (row.name, row.pk)
    if key not in _failure_cache:
        _failure_cache[key] = FailureModel.from_bytes(
            bytes(row.artifact), features=list(row.features), threshold=row.training["threshold"]
        )
    return _failure_cache[key]


def anomaly_model_load(row: TrainedModel) -> anomaly.AnomalyModel:
    key = (row.name, row.pk)
    if key not in _anomaly_cache:
        _anomaly_cache[key] = anomaly.AnomalyModel.from_bytes(bytes(row.artifact))
    return _anomaly_cache[key]


def rul_model_load(row: TrainedModel) -> rul.RulModel:
    key = (row.name, row.pk)
    if key not in _rul_cache:
        _rul_cache[key] = rul.RulModel.from_bytes(bytes(row.artifact))
    return _rul_cache[key]


# --- Anomaly detectors, one per node kind -------------------------------------------------


@dataclass(frozen=True)
class Series:
    """A node's telemetry as arrays: seconds since the epoch, one column per signal."""

    times_s: np.ndarray
    values: np.ndarray
    signals: list[str]


def node_series(
    *,
    node_id: int,
    start: datetime,
    end: datetime,
    max_points: int,
    under_load_kw: float | None = None,
) -> Series:
    """Averages of equal time slices (raw when few enough) of every telemetry column, plus the
    numeric `extra` keys (averaged per slice too); with `under_load_kw`, of the readings taken
    under load only (apps.telemetry.selectors.point_range_downsampled)."""
    rows = point_range_downsampled(
        node_id=node_id,
        start=start,
        end=end,
        max_points=max_points,
        under_load_kw=under_load_kw,
    )
    extras: list[str] = []
    for row in rows:
        for key, value in (row.get("extra") or {}).items():
            if key not in extras and isinstance(value, int | float) and not isinstance(value, bool):
                extras.append(key)
    signals = [*SIGNALS, *extras]
    times = np.array([row["time"].timestamp() for row in rows], dtype=float)
    values = np.array(
        [
            [math.nan if row.get(s) is None else float(row[s]) for s in SIGNALS]
            + [float((row.get("extra") or {}).get(k, math.nan)) for k in extras]
            for row in rows
        ],
        dtype=float,
    ).reshape(len(rows), len(signals))
    return Series(times, values, signals)


def unhealthy_spans(
    node_id: int, *, since: datetime, now: datetime
) -> list[tuple[float, float, str]]:
    """Where a node did not run in health (epoch seconds, start, end, why). Healthy operation,
    what the anomaly detectors learn, is every window of telemetry outside these spans:
    - the HORIZON_H hours before a confirmed failure (a ticket resolved as a failure, an
      emergency maintenance window), and a confirmed failure's ticket while it was open;
    - maintenance windows (the node out of service), and the machine's own fault reports
      (machine_fault tickets) while they are unresolved;
    Threshold alerts and the agent's unconfirmed tickets are not in it: a rule that fires on
    normal running (a hot spindle under every heavy cut) would otherwise leave the detector the
    cool periods only, and it would flag normal operation. Offline time has no telemetry, so no
    windows. A fault nobody confirmed can reach training; once resolved as a failure, its
    period is out of the next training."""
    spans: list[tuple[float, float, str]] = []
    end_s = now.timestamp()
    for at in failure_events(since=since - timedelta(hours=HORIZON_H)).get(node_id, []):
        spans.append((at.timestamp() - HORIZON_H * 3600, at.timestamp(), "before a failure"))
    problems = Ticket.objects.filter(node_id=node_id).filter(
        Q(was_failure=True) | Q(issue_type=Ticket.IssueType.MACHINE_FAULT, status__in=UNRESOLVED)
    )
    for created, resolved in problems.values_list("created_at", "resolved_at"):
        if resolved is None or resolved >= since:
            spans.append(
                (created.timestamp(), (resolved.timestamp() if resolved else end_s), "fault")
            )
    windows = MaintenanceWindow.objects.filter(node_id=node_id, ends_at__gte=since).exclude(
        status__in=[MaintenanceWindow.Status.CANCELLED, MaintenanceWindow.Status.PLANNED]
    )
    for start, end, started, completed in windows.values_list(
        "starts_at", "ends_at", "started_at", "completed_at"
    ):
        spans.append(
            (
                (started or start).timestamp(),
                (completed or (end if started is None else now)).timestamp(),
                "maintenance",
            )
        )
    return spans


def _alarm_rate(
    model: anomaly.AnomalyModel,
    rows: np.ndarray,
    nodes: np.ndarray,
    ends: np.ndarray,
    steps: np.ndarray,
    min_runs: np.ndarray,
) -> tuple[int, float, float, int]:
    """Alarms a detector raises on healthy windows (each `steps` after the node's previous
    one; an alarm is a run of at least `min_runs` flagged windows, what the scoring service's
    sustain rule turns into a ticket), per node-week, the node-weeks they cover, and the runs
    of flagged windows however short."""
    flagged = model.is_anomalous(rows)
    alarms = anomaly.alarm_count(flagged, nodes=nodes, ends=ends, step_s=steps, min_run=min_runs)
    runs = anomaly.alarm_count(flagged, nodes=nodes, ends=ends, step_s=steps)
    weeks = anomaly.exposure_node_weeks(len(rows), step_s=steps)
    return alarms, alarms / weeks, weeks, runs


def sustained_windows(cadence_s: float | None, step_s: float) -> int:
    """How many consecutive windows `step_s` apart an anomaly must be flagged in to be
    sustained (cadence.sustain_for): the first and the last included."""
    return 1 + math.ceil(sustain_for(cadence_s).total_seconds() / step_s - 1e-9)


def cadence_at(*, node_id: int, now: datetime) -> float | None:
    """The node's cadence as scoring sees it: configured, else learned from its readings up to
    `now` (as the fleet monitor learns it)."""
    configured = (
        NodeHealth.objects.filter(node_id=node_id)
        .values_list("expected_cadence_s", flat=True)
        .first()
    )
    return cadence_of(expected_s=configured, learned_s=cadence_learn(node_id=node_id, now=now))


def anomaly_model_train_and_register(
    *, kind: str, now: datetime | None = None
) -> TrainedModel | str:
    """Healthy windows (`unhealthy_spans`) of the kind's nodes, in time order: the forest is
    fit on the oldest 60%, its threshold chosen on the next 20% for the false-alarm bound
    (settings.MAINTENANCE_ANOMALY_ALARMS_PER_NODE_WEEK, at anomaly.CALIBRATION_HEADROOM of
    it), and its false alarms per node-week measured on the newest 20%, with every window of a
    confirmed problem, to score. Each node's windows, their step and the history read are in
    samples of its cadence (apps.maintenance.cadence.anomaly_window: the last week of 10-minute
    windows for a fast sensor, 12-hour windows over the last 2,016 readings for an hourly one).
    An alarm is a run of flagged windows long enough for the scoring service's sustain rule to
    open a ticket (`sustained_windows`; the threshold is chosen on every run however short,
    the stricter count). A detector whose held-out alarms show a rate above the bound (the
    rate's lower 95% confidence bound above it: `anomaly.alarm_rate_lower_bound`) is stored but
    not activated."""
    now = now or timezone.now()
    bound = float(settings.MAINTENANCE_ANOMALY_ALARMS_PER_NODE_WEEK)
    healthy: list[tuple[float, int, np.ndarray, list[str], float]] = []
    faulty: list[tuple[np.ndarray, list[str]]] = []
    excluded: dict[str, int] = defaultdict(int)
    node_ids = list(FabricationNode.objects.filter(kind=kind).values_list("pk", flat=True))
    node_windows: dict[int, dict[str, float | None]] = {}
    earliest = now
    for node_id in node_ids:
        cadence = cadence_at(node_id=node_id, now=now)
        window = anomaly_window(cadence)
        since = now - timedelta(seconds=window.history_s)
        earliest = min(earliest, since)
        series = node_series(
            node_id=node_id,
            start=since,
            end=now,
            max_points=int(window.history_s / max(ANOMALY_SLOT_S, cadence or 0)),
        )
        if len(series.times_s) < 10:
            continue
        node_windows[node_id] = {
            "cadence_s": cadence,
            "window_s": window.width_s,
            "step_s": window.step_s,
            "alarm_after_windows": sustained_windows(cadence, window.step_s),
        }
        names, rows, ends = anomaly.window_rows(
            series.times_s,
            series.values,
            series.signals,
            width_s=window.width_s,
            step_s=window.step_s,
        )
        spans = unhealthy_spans(node_id, since=since, now=now)
        for row, end in zip(rows, ends, strict=True):
            start = end - window.width_s
            why = next((w for a, b, w in spans if a <= end and b >= start), None)
            if why is None:
                healthy.append((float(end), node_id, row, names, window.step_s))
                continue
            excluded[why] += 1
            if why != "maintenance":
                faulty.append((row, names))
    if len(healthy) < ANOMALY_MIN_WINDOWS:
        return f"not enough healthy history for {kind}: {len(healthy)} windows"
    features: list[str] = []
    for _, _, _, row_names, _ in healthy:
        features.extend(n for n in row_names if n not in features)
    healthy.sort(key=lambda item: item[0])
    matrix = np.vstack([anomaly.align_columns(n, r, features) for _, _, r, n, _ in healthy])
    nodes = np.array([node for _, node, _, _, _ in healthy])
    ends = np.array([end for end, _, _, _, _ in healthy])
    steps = np.array([step for _, _, _, _, step in healthy])
    min_runs = np.array([node_windows[node]["alarm_after_windows"] for node in nodes], dtype=int)
    fit, calibrate = int(len(matrix) * 0.6), int(len(matrix) * 0.8)
    sustain = sorted({n: w["alarm_after_windows"] for n, w in node_windows.items()}.items())
    digest = hashlib.sha256(repr((features, fit, calibrate, len(faulty), bound, sustain)).encode())
    digest.update(np.ascontiguousarray(matrix).tobytes())
    for row, _ in faulty:
        digest.update(np.ascontiguousarray(row, dtype=float).tobytes())
    fingerprint, code = digest.hexdigest(), f"{ANOMALY_CODE_VERSION} sklearn {sklearn.__version__}"
    unchanged = _unchanged(anomaly_name(kind), fingerprint=fingerprint, code=code)
    if unchanged:
        return unchanged
    model = anomaly.anomaly_model_train(matrix[:fit], features, seed=0)
    threshold = anomaly.threshold_for_alarm_rate(
        model.score(matrix[fit:calibrate]),
        nodes=nodes[fit:calibrate],
        ends=ends[fit:calibrate],
        step_s=steps[fit:calibrate],
        alarms_per_node_week=bound,
    )
    model = replace(model, threshold=threshold)
    held = slice(calibrate, None)
    held_healthy, held_nodes, held_ends = matrix[held], nodes[held], ends[held]
    alarms, rate, weeks, runs = _alarm_rate(
        model, held_healthy, held_nodes, held_ends, steps[held], min_runs[held]
    )
    low = anomaly.alarm_rate_lower_bound(alarms, weeks)
    held_faulty = (
        np.vstack([anomaly.align_columns(n, r, features) for r, n in faulty])
        if faulty
        else np.empty((0, len(features)))
    )
    scores: dict[str, Any] = {
        "false_alarms_per_node_week": round(rate, 4),
        "false_alarms_per_node_week_low": round(low, 4),  # its lower 95% confidence bound
        "false_alarms": alarms,
        "flagged_runs": runs,  # however short: the threshold is chosen on these
        "false_alarm_bound_per_node_week": bound,
        "held_out_node_hours": round(weeks * 168, 2),
        "false_alarm_rate": round(float(np.mean(model.is_anomalous(held_healthy))), 4),
        "healthy_windows": len(held_healthy),
        "faulty_windows": len(held_faulty),
        "threshold": round(model.threshold, 4),
    }
    active_row = model_active(anomaly_name(kind))
    previous = anomaly_model_load(active_row) if active_row is not None else None
    if len(held_faulty):
        scores = {**scores, **anomaly.anomaly_metrics(model, held_healthy, held_faulty)}
        metric, candidate, baseline = "1 - roc_auc", 1 - scores["roc_auc"], 0.5
    else:
        # the same rows for both: the lower bound orders detectors as their alarm counts do
        metric, candidate, baseline = "false alarms per node-week (lower 95%)", low, bound
    active_value = None
    if previous is not None:
        h = anomaly.align_columns(features, held_healthy, previous.features)
        if len(held_faulty):
            f = anomaly.align_columns(features, held_faulty, previous.features)
            active_value = 1 - anomaly.anomaly_metrics(previous, h, f)["roc_auc"]
        else:
            their = _alarm_rate(previous, h, held_nodes, held_ends, steps[held], min_runs[held])[0]
            active_value = round(anomaly.alarm_rate_lower_bound(their, weeks), 6)
    refused = ""
    if low > bound:
        refused = (
            f"{alarms} sustained false alarm{'' if alarms == 1 else 's'} in "
            f"{scores['held_out_node_hours']:g} node-hours of held-out "
            f"healthy operation, {rate:.3g} per node-week, above the bound of {bound:g} "
            f"even at the rate's lower 95% confidence bound ({low:.3g})"
        )
    return model_register(
        name=anomaly_name(kind),
        algorithm=f"scikit-learn {sklearn.__version__} isolation forest (scaled, whitened)",
        artifact=model.to_bytes(),
        features=features,
        metrics=scores,
        training={
            "rows": fit,
            "calibration_rows": calibrate - fit,
            "held_out_rows": len(held_healthy) + len(held_faulty),
            "held_out": (
                "time order: fit on the oldest 60% of healthy windows, threshold chosen on the "
                "next 20% for the false-alarm bound, scored on the newest 20% and every "
                "window of a confirmed problem"
            ),
            "healthy": "outside failure horizons, confirmed faults and maintenance windows",
            "excluded_windows": dict(excluded),
            "nodes": len(node_ids),
            "from": earliest.isoformat(),
            "to": now.isoformat(),
            "window": (
                f"{settings.MAINTENANCE_ANOMALY_WINDOW_SAMPLES} samples of each node's cadence, "
                f"at least {ANOMALY_WINDOW_MIN_S / 60:g} min, one sample (at least "
                f"{ANOMALY_STEP_MIN_S / 60:g} min) apart"
            ),
            "windows": {str(node): w for node, w in node_windows.items()},
            "false_alarm_check": (
                "refused when the held-out alarms' rate per node-week is above the bound at "
                "95% confidence (its one-sided lower bound, Poisson)"
            ),
            "fingerprint": fingerprint,
            "code": code,
        },
        comparison=Comparison(
            metric=metric,
            candidate=round(candidate, 6),
            baseline=baseline,
            active=active_value,
            refused=refused,
        ),
    )


# --- Remaining useful life ---------------------------------------------------------------


def rul_name(time_unit: str) -> str:
    """The registry name of the RUL model of a time unit: hours and cycles never mix."""
    return RUL_CYCLES if time_unit == rul.CYCLES else RUL


def imported_runs(*, time_unit: str = rul.HOURS) -> list[rul.Run]:
    """The run-to-failure histories of one time unit (`rul.HOURS`: imported with `time`;
    `rul.CYCLES`: imported with `cycle`), one Run per unit."""
    stored = HistorySet.TimeUnit.CYCLES if time_unit == rul.CYCLES else HistorySet.TimeUnit.SECONDS
    runs = []
    for history in HistorySet.objects.filter(
        kind=HistorySet.Kind.RUN_TO_FAILURE, time_unit=stored
    ).order_by("pk"):
        signals = list(history.signals)
        by_unit: dict[str, list[tuple[float, dict[str, float], float | None]]] = defaultdict(list)
        for unit, t, values, failure_t in HistoryRow.objects.filter(history=history).values_list(
            "unit", "t", "values", "failure_t"
        ):
            by_unit[unit].append((t, values, failure_t))
        for unit, rows in sorted(by_unit.items()):
            rows.sort(key=lambda r: r[0])
            runs.append(
                rul.Run(
                    unit=f"{history.pk}:{unit}",
                    times_s=np.array([r[0] for r in rows], dtype=float),
                    values=np.array(
                        [[float(r[1].get(s, math.nan)) for s in signals] for r in rows]
                    ),
                    signals=signals,
                    failure_s=float(rows[-1][2] or rows[-1][0]),
                    time_unit=time_unit,
                )
            )
    return runs


def platform_runs(*, now: datetime) -> list[rul.Run]:
    """Each confirmed failure of a node: its telemetry from the previous failure (or 30 days
    back) up to the failure, averaged over 10-minute slices."""
    runs = []
    for node_id, times in failure_events(since=now - timedelta(days=365)).items():
        previous = None
        for at in times:
            start = max(
                previous or at - timedelta(days=RUL_HISTORY_DAYS),
                at - timedelta(days=RUL_HISTORY_DAYS),
            )
            slots = int((at - start).total_seconds() // 600) or 1
            series = node_series(node_id=node_id, start=start, end=at, max_points=slots)
            if len(series.times_s) >= 10:
                runs.append(
                    rul.Run(
                        unit=f"node-{node_id}@{at:%Y%m%d%H%M}",
                        times_s=series.times_s,
                        values=series.values,
                        signals=series.signals,
                        failure_s=at.timestamp(),
                    )
                )
            previous = at
    return runs


def _unchanged(name: str, *, fingerprint: str, code: str) -> str | None:
    """Why not to store a new version: the newest version of `name` was trained on the same
    data with the same code (training is seeded, so it would be the same model)."""
    latest = TrainedModel.objects.filter(name=name).defer("artifact").first()
    if latest is None:
        return None
    if latest.training.get("fingerprint") == fingerprint and latest.training.get("code") == code:
        return f"unchanged: same data and code as v{latest.version}, no new version"
    return None


def rul_model_train_and_register(
    *, now: datetime | None = None, time_unit: str = rul.HOURS
) -> TrainedModel | str:
    """The RUL model of one time unit: trained on 75% of the units (seed 0) and scored on the
    rest against the active model and the mean-RUL baseline; the version stored is then refit
    on every unit (its interval from the held-out units of that refit). The active model was
    refit on units that may now be held out: then its held-out score as registered stands in
    for it, not its (seen) score on these rows."""
    now = now or timezone.now()
    name = rul_name(time_unit)
    runs = imported_runs(time_unit=time_unit)
    if time_unit == rul.HOURS:
        runs += platform_runs(now=now)
    units = {run.unit for run in runs}
    if len(units) < RUL_MIN_UNITS:
        return (
            f"not enough run-to-failure history in {time_unit}: {len(units)} units, "
            f"{RUL_MIN_UNITS} needed"
        )
    fingerprint = rul.run_fingerprint(runs)
    code = f"{rul.CODE_VERSION} xgboost {xgb.__version__}"
    unchanged = _unchanged(name, fingerprint=fingerprint, code=code)
    if unchanged:
        return unchanged
    train, test = rul.split_units(runs, test_share=0.25, seed=0)
    candidate = rul.rul_model_train(train, seed=0)
    scores = rul.rul_metrics(candidate, test)
    unit = candidate.unit
    metric = f"rmse_{unit}"
    test_units = {run.unit for run in test}
    active_row = model_active(name)
    active_rmse = None
    against = "no active model"
    if active_row is not None:
        seen = set(active_row.training.get("unit_names", [])) & test_units
        recorded = (active_row.metrics or {}).get(metric)
        if seen:
            active_rmse = float(recorded) if isinstance(recorded, int | float) else None
            against = (
                f"v{active_row.version}'s registered held-out "
                f"{label_with_unit(metric, 'metric')}: it was refit on "
                f"{len(seen)} of the units held out here"
            )
        else:
            active_rmse = rul.rul_metrics(rul_model_load(active_row), test)[metric]
            against = f"v{active_row.version} on the same held-out rows"
    model = rul.rul_model_train(runs, seed=0)
    return model_register(
        name=name,
        algorithm=f"xgboost {xgb.__version__} regressor on history features ({unit})",
        artifact=model.to_bytes(),
        features=list(model.features),
        metrics=scores,
        training={
            "rows": model.training_rows,
            "held_out_rows": scores["rows"],
            "held_out": f"{len(test_units)} of {len(units)} units (25%, seed 0), scored "
            "before the refit on all units",
            "units": len(units),
            "unit_names": sorted(units),
            "time_unit": unit,
            "cap": model.cap,
            "trees": model.trees,
            "operating_settings": [] if model.conditions is None else model.conditions.settings,
            "inputs": run_input_ranges(runs),
            "interval": "5-95% residuals of held-out units, per tercile of the prediction",
            "compared_with": against,
            "fingerprint": fingerprint,
            "code": code,
            "to": now.isoformat(),
        },
        comparison=Comparison(
            metric=metric,
            candidate=scores[metric],
            baseline=scores[f"baseline_{metric}"],
            active=active_rmse,
        ),
    )


class TrainingBusy(Exception):
    """Another process is training this model."""


LOCK_CLASS = 20  # pg advisory lock namespace of training runs (issue 20)


@contextmanager
def training_slot(name: str) -> Iterator[None]:
    """Holds the training of `name` for the block: one run per model at a time, across
    processes (a PostgreSQL advisory lock held by the block's transaction, so a crashed worker
    cannot leave it taken). Raises TrainingBusy if another run holds it. The block runs in one
    transaction: a model that fails leaves nothing behind. (SQLite: single process, no lock,
    and no transaction around the training: SQLite's take the write lock up front
    (transaction_mode IMMEDIATE), and one held while a model trains stopped every other write,
    ingest and logins included, for as long; the registry's one write is atomic on its own.)"""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        key = zlib.crc32(name.encode()) - 2**31  # into int4
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [LOCK_CLASS, key])
            (taken,) = cursor.fetchone()
        if not taken:
            raise TrainingBusy(f"{name} is already being trained")
        yield


@dataclass(frozen=True)
class TrainingOutcome:
    name: str
    text: str
    failed: bool = False
    busy: bool = False


def model_train_guarded(name: str, job: Callable[[], TrainedModel | str]) -> TrainingOutcome:
    """Runs one model's training in its slot; what happened, never an exception: a model that
    cannot train says why (ValueError: bad or too little data) and does not stop the others."""
    try:
        with training_slot(name):
            result = job()
    except TrainingBusy:
        return TrainingOutcome(
            name, "already running: another training of it is under way", busy=True
        )
    except ValueError as exc:
        logger.warning("training %s failed: %s", name, exc)
        return TrainingOutcome(name, f"failed: {exc}", failed=True)
    except Exception as exc:  # noqa: BLE001 - one model's bug must not stop the others
        logger.exception("training %s failed", name)
        return TrainingOutcome(name, f"failed: {type(exc).__name__}: {exc}", failed=True)
    text = result if isinstance(result, str) else f"v{result.version}: {result.decision}"
    return TrainingOutcome(name, text)


def models_train_outcomes(*, now: datetime | None = None) -> list[TrainingOutcome]:
    """Every model, each on its own (one per model at a time across processes)."""
    now = now or timezone.now()
    jobs: list[tuple[str, Callable[[], TrainedModel | str]]] = [
        (FAILURE, lambda: failure_model_train_and_register(now=now)),
        (RUL, lambda: rul_model_train_and_register(now=now, time_unit=rul.HOURS)),
        (RUL_CYCLES, lambda: rul_model_train_and_register(now=now, time_unit=rul.CYCLES)),
    ]
    kinds = FabricationNode.objects.values_list("kind", flat=True).distinct()
    for kind in sorted(set(kinds)):
        jobs.append(
            (anomaly_name(kind), partial(anomaly_model_train_and_register, kind=kind, now=now))
        )
    return [model_train_guarded(name, job) for name, job in jobs]


def models_train(*, now: datetime | None = None) -> dict[str, str]:
    """Nightly: every model; what happened to each."""
    return {o.name: o.text for o in models_train_outcomes(now=now)}

"""Scoring each node with the active models (Celery, every few minutes; never on ingest):
anomaly score of the newest window, failure probability, vibration trend and remaining useful
life. Stores a Prediction, updates the node's health row, and raises tickets: an anomaly above
its threshold for a sustained time, a failure probability above 0.7, or a remaining life below
the node's planned horizon."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.ml import model_active
from apps.core.models import TrainedModel
from apps.maintenance.cadence import anomaly_window, offline_after, sustain_for
from apps.maintenance.learning import anomaly, rul
from apps.maintenance.learning.features import ENGINEERED, Table
from apps.maintenance.models import NodeHealth, Prediction, Severity, ThresholdRule, Ticket
from apps.maintenance.services.alerts import rules_applicable
from apps.maintenance.services.failure_risk import (
    EMPTY_FAILURE_FIELDS,
    FailureEstimate,
    failure_estimate,
    failure_inapplicable,
    failure_not_applied_fields,
    failure_reconcile,
)
from apps.maintenance.services.realtime import maintenance_broadcast
from apps.maintenance.services.remaining_life import (
    EMPTY_FIELDS,
    RulEstimate,
    RulNotApplied,
    rul_estimate,
    rul_not_applied_fields,
    rul_reconcile,
)
from apps.maintenance.services.tickets import ticket_raise
from apps.maintenance.services.training import (
    FAILURE,
    RUL,
    RUL_CYCLES,
    anomaly_model_load,
    anomaly_name,
    failure_model_load,
    node_series,
)
from apps.vendors.lifecycle import ACTIVE_STATUSES
from apps.vendors.models import FabricationNode

# The failure model reads the mean levels of the last 5 minutes (at least one sample of the
# node's cadence: a 5-minute sensor's newest reading may be a little older than 5 minutes).
LEVEL_WINDOW_S = 300.0
TREND_HOURS = 24.0
# Levels and the vibration trend compare like with like: readings under load (above this share
# of the rated power, with the spindle turning where there is one), where there are
# enough; an idling machine's levels mixed with its working ones read as a failing machine
# (5-minute means of a mill that cut half the time look like a power failure to the AI4I-trained
# model) and as a vibration trend.
UNDER_LOAD_SHARE = 0.25
# A trend speaks for at most this many times the span of readings it was fitted on: 30 minutes
# of readings say nothing about the next week.
TREND_MAX_EXTRAPOLATION = 10.0


@dataclass
class NodeScore:
    node: int
    anomaly_score: float | None = None
    anomaly_threshold: float | None = None
    failure_probability: float | None = None
    rul_hours: float | None = None
    vibration_hours_to_limit: float | None = None
    models: dict[str, int] = field(default_factory=dict)
    tickets: list[int] = field(default_factory=list)
    rul: RulEstimate | None = None  # raw; smoothed and capped by node_score_apply
    failure: FailureEstimate | None = None  # likewise, smoothed and floored
    failure_not_applied: str = ""  # why the active failure model was not asked
    rul_not_applied: str = ""  # why the active RUL model was not asked


def _levels(series: Any, *, since_s: float) -> Table:
    recent = series.times_s >= since_s
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a signal without any reading: NaN
        values = series.values[recent]
        means = (
            np.nanmean(values, axis=0) if len(values) else np.full(len(series.signals), math.nan)
        )
    return Table(list(series.signals), means.reshape(1, -1))


def _vibration_limit(node: FabricationNode) -> float:
    rule = rules_applicable(node=node).get(("vibration_mm_s", ThresholdRule.Mode.ABOVE))
    if rule is not None and rule.critical is not None:
        return float(rule.critical)
    return 4.0


def _active(name: str, cache: dict[str, TrainedModel | None] | None) -> TrainedModel | None:
    if cache is None:
        return model_active(name)
    if name not in cache:
        cache[name] = model_active(name)
    return cache[name]


def node_score(
    *,
    node: FabricationNode,
    now: datetime | None = None,
    active: dict[str, TrainedModel | None] | None = None,
) -> NodeScore:
    """`active` caches the registry's active models across the nodes of one run."""
    now = now or timezone.now()
    score = NodeScore(node=node.pk)
    cadence = (
        NodeHealth.objects.filter(node=node).values_list("cadence_s", "expected_cadence_s").first()
    )
    cadence_s = (cadence[1] or cadence[0]) if cadence else None  # as NodeHealth.cadence
    window = anomaly_window(cadence_s)  # in samples of the cadence, as the detector learned
    recent = node_series(
        node_id=node.pk,
        start=now - max(timedelta(hours=TREND_HOURS), timedelta(seconds=window.width_s)),
        end=now,
        max_points=2880,  # 30 s slices over a day
    )
    if len(recent.times_s) == 0:
        return score
    now_s = now.timestamp()
    level_window_s = max(LEVEL_WINDOW_S, cadence_s or 0.0)
    detector = _active(anomaly_name(node.kind), active)
    if detector is not None:
        model = anomaly_model_load(detector)
        start = now_s - window.width_s
        inside = recent.times_s > start
        if inside.sum() >= 2:
            names, row = anomaly.window_features(
                recent.times_s[inside], recent.values[inside], recent.signals
            )
            value = float(model.score(anomaly.align_columns(names, row, model.features))[0])
            score.anomaly_score, score.anomaly_threshold = value, model.threshold
            score.models[detector.name] = detector.version
    loaded = node_series(
        node_id=node.pk,
        start=now - timedelta(hours=TREND_HOURS),
        end=now,
        max_points=2880,
        under_load_kw=UNDER_LOAD_SHARE * node.rated_power_kw,
    )
    classifier = _active(FAILURE, active)
    if classifier is not None:
        levels = _levels(loaded, since_s=now_s - level_window_s)
        if np.isnan(levels.values).all():  # it idled throughout: its idle levels
            levels = _levels(recent, since_s=now_s - level_window_s)
        heard = not np.isnan(levels.values).all()
        why_not = failure_inapplicable(row=classifier, levels=levels) if heard else ""
        if why_not:
            score.failure_not_applied = f"{classifier.name} v{classifier.version}: {why_not}"
        elif heard:
            model_f = failure_model_load(classifier)
            score.failure_probability = float(model_f.probability(levels)[0])
            score.models[classifier.name] = classifier.version
            score.failure = failure_estimate(
                row=classifier,
                probability=score.failure_probability,
                missing_inputs=[
                    name
                    for name in model_f.features
                    if name not in ENGINEERED and not levels.has(name)
                ],
            )
    if "vibration_mm_s" in recent.signals:
        series = recent
        if np.isfinite(loaded.values[:, loaded.signals.index("vibration_mm_s")]).sum() >= (
            rul.TREND_MIN_POINTS
        ):
            series = loaded
        times, column = series.times_s, series.values[:, series.signals.index("vibration_mm_s")]
        trend = rul.vibration_trend(times, column, limit=_vibration_limit(node), exponential=True)
        span_h = (times[-1] - times[0]) / 3600 if len(times) else 0.0
        if (
            trend is not None
            and trend.hours_to_limit is not None
            and trend.hours_to_limit <= TREND_MAX_EXTRAPOLATION * span_h
        ):
            score.vibration_hours_to_limit = round(trend.hours_to_limit, 2)
    rul_answer = rul_estimate(
        node=node,
        now=now,
        hours_model=_active(RUL, active),
        cycles_model=_active(RUL_CYCLES, active),
    )
    if isinstance(rul_answer, RulNotApplied):
        score.rul_not_applied = f"{rul_answer.model} v{rul_answer.version}: {rul_answer.why}"
    else:
        score.rul = rul_answer
    if score.rul is not None:
        score.rul_hours = score.rul.hours
        score.models[score.rul.model] = score.rul.version
    return score


def _life_left(health: NodeHealth, hours: float) -> str:
    if health.rul_unit == "cycles" and health.rul_value is not None:
        return f"{health.rul_value:.0f} cycles (~{hours:.0f} h)"
    return f"{hours:.0f} h"


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


@transaction.atomic
def node_score_apply(*, node: FabricationNode, score: NodeScore, now: datetime) -> NodeScore:
    """Store the scoring and act on it: health row, prediction history, tickets."""
    health, _ = NodeHealth.objects.select_for_update().get_or_create(node=node)
    anomalous = (
        score.anomaly_score is not None
        and score.anomaly_threshold is not None
        and score.anomaly_score > score.anomaly_threshold
    )
    if anomalous and health.anomaly_since is None:
        health.anomaly_since = now
    elif not anomalous:
        health.anomaly_since = None
    health.anomaly_score = _finite(score.anomaly_score)
    health.anomaly_threshold = _finite(score.anomaly_threshold)
    health.vibration_hours_to_limit = _finite(score.vibration_hours_to_limit)
    failure_fields = EMPTY_FAILURE_FIELDS
    if score.failure is not None and math.isfinite(score.failure.value):
        failure_fields = failure_reconcile(
            node=node,
            estimate=score.failure,
            now=now,
            vibration_hours_to_limit=health.vibration_hours_to_limit,
        ).fields()
    elif score.failure_not_applied:
        failure_fields = failure_not_applied_fields(node=node, why=score.failure_not_applied)
    for name, value in failure_fields.items():
        setattr(health, name, value)
    rul_fields = EMPTY_FIELDS
    if score.rul is not None:
        rul_fields = rul_reconcile(
            node=node,
            estimate=score.rul,
            now=now,
            failure_probability=health.failure_probability,
            vibration_hours_to_limit=health.vibration_hours_to_limit,
        ).fields()
    elif score.rul_not_applied:
        rul_fields = rul_not_applied_fields(node=node, why=score.rul_not_applied)
    for name, value in rul_fields.items():
        setattr(health, name, value)
    health.save()
    Prediction.objects.create(
        node=node,
        at=now,
        anomaly_score=health.anomaly_score,
        anomaly_threshold=health.anomaly_threshold,
        vibration_hours_to_limit=health.vibration_hours_to_limit,
        models_used=score.models,
        **failure_fields,
        **rul_fields,
    )
    evidence = {
        "source": "models",
        "at": now.isoformat(),
        "anomaly_score": health.anomaly_score,
        "anomaly_threshold": health.anomaly_threshold,
        "failure_probability": health.failure_probability,
        "failure_interval": [health.failure_low, health.failure_high],
        "failure_evidence": failure_fields["failure_evidence"],
        "rul_hours": health.rul_hours,
        "rul": {k: rul_fields[k] for k in ("rul_unit", "rul_value", "rul_low", "rul_high")},
        "rul_evidence": rul_fields["rul_evidence"],
        "vibration_hours_to_limit": health.vibration_hours_to_limit,
        "planned_horizon_h": health.planned_horizon_h,
        "models": score.models,
    }
    sustain = sustain_for(health.cadence)  # in samples of the node's cadence
    if anomalous and health.anomaly_since is not None and now - health.anomaly_since >= sustain:
        minutes = int((now - health.anomaly_since).total_seconds() // 60)
        ticket, _ = ticket_raise(
            node=node,
            issue_type=Ticket.IssueType.ANOMALY,
            severity=Severity.WARNING,
            title=f"{node.name}: unusual behaviour for {minutes} min",
            evidence={**evidence, "anomalous_since": health.anomaly_since.isoformat()},
            suggested_action="Compare the node's recent signals with its normal operation "
            "(ticket chart); check tooling, fixtures and bearings before the next job.",
            at=now,
            fold=True,
        )
        score.tickets.append(ticket.pk)
    probability = health.failure_probability
    if probability is not None and probability > settings.MAINTENANCE_FAILURE_PROBABILITY:
        floored = "floored_at" in health.failure_evidence  # by the evidence, not the model
        ticket, _ = ticket_raise(
            node=node,
            issue_type=Ticket.IssueType.FAILURE_RISK,
            severity=Severity.CRITICAL,
            title=f"{node.name}: {'at least ' if floored else ''}{probability:.0%} chance of "
            "failure within a day",
            evidence=evidence,
            suggested_action="Plan a predictive maintenance window before the next long job; "
            "inspect tool wear, spindle load and cooling.",
            at=now,
            fold=True,
        )
        score.tickets.append(ticket.pk)
    remaining = health.rul_hours
    if remaining is None:
        remaining = health.vibration_hours_to_limit
    if remaining is not None and remaining < health.planned_horizon_h:
        ticket, _ = ticket_raise(
            node=node,
            issue_type=Ticket.IssueType.LOW_RUL,
            severity=Severity.WARNING,
            title=f"{node.name}: about {_life_left(health, remaining)} of life left, "
            f"{health.planned_horizon_h:.0f} h planned",
            evidence=evidence,
            suggested_action="Schedule a predictive maintenance window before the remaining "
            "life runs out; order the parts (bearings) now.",
            at=now,
            fold=True,
        )
        score.tickets.append(ticket.pk)
    maintenance_broadcast(
        node,
        {
            "type": "node.prediction",
            "node": node.pk,
            "anomaly_score": health.anomaly_score,
            "failure_probability": health.failure_probability,
            "failure_low": health.failure_low,
            "failure_high": health.failure_high,
            "rul_hours": health.rul_hours,
        },
    )
    return score


def nodes_score(*, now: datetime | None = None) -> list[NodeScore]:
    """Every approved in-service node heard from recently (within its offline limit)."""
    now = now or timezone.now()
    out = []
    nodes = FabricationNode.objects.filter(
        approval=FabricationNode.Approval.APPROVED, status__in=ACTIVE_STATUSES
    )
    active: dict[str, TrainedModel | None] = {}
    for node in nodes:
        score = node_score_run(node=node, now=now, active=active)
        if score is not None:
            out.append(score)
    return out


def node_score_run(
    *,
    node: FabricationNode,
    now: datetime,
    active: dict[str, TrainedModel | None] | None = None,
) -> NodeScore | None:
    """One node's scoring as the periodic run does it (score_history replays it at past
    times): scored and acted on, or None when there was nothing to score or it is offline."""
    score = node_score(node=node, now=now, active=active)
    if (
        not score.models
        and score.vibration_hours_to_limit is None
        and not score.failure_not_applied
        and not score.rul_not_applied
    ):
        return None  # nothing heard, or nothing to score with
    health = NodeHealth.objects.filter(node=node).first()
    if (
        health is not None
        and health.last_seen
        and now - health.last_seen > offline_after(health.cadence)
    ):
        return None
    return node_score_apply(node=node, score=score, now=now)

"""A node's remaining useful life as shown and acted on: the RUL model's prediction in the node's
unit, with its interval, smoothed over consecutive scorings and held to the evidence the agent
has (`rul_reconcile`).

- Unit: a node that reports a cycle counter (`cycle` in its telemetry's `extra`, counting from
  the machine's start or last repair) is scored by the cycles model (`maintenance.rul.cycles`,
  trained on cycle-indexed histories) on its readings averaged per cycle, and its RUL is in
  cycles; its hours follow from the cycles it ran per hour over the scored span. Other nodes
  are scored by the hours model.
- Smoothing: each new raw prediction moves the shown value by a weight that grows with the
  time (or cycles) since the previous scoring, 1 - exp(-elapsed / tau), tau SMOOTHING_TAU (30
  min, 5 cycles; a third of it when the prediction falls: caution first), from the previous
  value aged by that elapsed time: predictions seconds apart barely move it, an hour later the
  new one dominates. Reset after a completed maintenance window or a gap longer
  than SMOOTHING_RESET_H.
- Evidence caps, applied after smoothing, to the value and its interval: an open critical alert
  (a signal past its rule's critical limit) caps the RUL at 0; a failure probability above
  MAINTENANCE_FAILURE_PROBABILITY caps it at the failure model's horizon (24 h); the vibration
  trend's time to its limit caps it at that time. Each cap that bites is said in `evidence`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings

from apps.core.labels import label, quantity
from apps.core.models import TrainedModel
from apps.maintenance.learning import rul
from apps.maintenance.learning.features import Table
from apps.maintenance.models import Alert, MaintenanceWindow, Prediction, Severity
from apps.maintenance.services.training import (
    HORIZON_H,
    Series,
    inputs_inapplicable,
    node_series,
    rul_model_load,
)
from apps.vendors.models import FabricationNode

CYCLE_SIGNAL = "cycle"
RUL_DAYS = 14
PROBE = timedelta(hours=1)  # the newest readings say whether the node counts cycles
PROBE_POINTS = 20_000
CYCLE_MAX_POINTS = 50_000
SMOOTHING_TAU = {rul.HOURS: 0.5, rul.CYCLES: 5.0}  # hours, cycles
FALLING_FASTER = 3.0  # a falling prediction follows with tau / 3: caution first
SMOOTHING_RESET_H = 48.0


@dataclass
class RulEstimate:
    """`value`, `low`, `high` in `unit` ("h" or "cycles")."""

    unit: str
    value: float
    low: float
    high: float
    model: str
    version: int
    cap: float
    position: float | None = None  # the node's cycle counter, for cycle units
    cycles_per_hour: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def hours(self) -> float | None:
        if self.unit == rul.HOURS:
            return self.value
        if self.cycles_per_hour:
            return self.value / self.cycles_per_hour
        return None

    def fields(self) -> dict[str, Any]:
        """Prediction / NodeHealth fields."""
        hours = self.hours
        return {
            "rul_hours": None if hours is None else round(hours, 1),
            "rul_unit": self.unit,
            "rul_value": round(self.value, 1),
            "rul_low": round(self.low, 1),
            "rul_high": round(self.high, 1),
            "rul_evidence": self.evidence,
        }


@dataclass(frozen=True)
class RulNotApplied:
    """The active RUL model was not asked about the node: `why` (services/training.py
    inputs_inapplicable), e.g. a model trained on mills asked about a printer at work."""

    model: str
    version: int
    why: str


EMPTY_FIELDS: dict[str, Any] = {
    "rul_hours": None,
    "rul_unit": "",
    "rul_value": None,
    "rul_low": None,
    "rul_high": None,
    "rul_evidence": {},
}


def _counts_cycles(series: Series) -> bool:
    return CYCLE_SIGNAL in series.signals and bool(
        np.isfinite(series.values[:, series.signals.index(CYCLE_SIGNAL)]).any()
    )


def per_cycle(series: Series) -> tuple[np.ndarray, np.ndarray, list[str], float | None]:
    """The series averaged per value of its cycle counter: (cycles, values, signals without
    the counter, cycles per hour over the span or None)."""
    at = series.signals.index(CYCLE_SIGNAL)
    counter = series.values[:, at]
    seen = np.isfinite(counter)
    others = [s for i, s in enumerate(series.signals) if i != at]
    values = np.delete(series.values, at, axis=1)[seen]
    counter, times = counter[seen], series.times_s[seen]
    cycles, inverse = np.unique(counter, return_inverse=True)
    out = np.full((len(cycles), len(others)), np.nan)
    for j in range(len(others)):
        column = values[:, j]
        ok = np.isfinite(column)
        sums = np.bincount(inverse[ok], weights=column[ok], minlength=len(cycles))
        counts = np.bincount(inverse[ok], minlength=len(cycles))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, j] = np.where(counts > 0, sums / counts, np.nan)
    rate = None
    if len(cycles) >= 2 and times[-1] > times[0]:
        rate = float((counter[-1] - counter[0]) / ((times[-1] - times[0]) / 3600.0)) or None
    return cycles, out, others, rate


def latest_levels(values: np.ndarray, signals: list[str]) -> Table:
    """One row: each signal's newest finite value in `values` (NaN where it has none)."""
    latest = np.full(len(signals), math.nan)
    for j in range(len(signals)):
        finite = np.flatnonzero(np.isfinite(values[:, j]))
        if len(finite):
            latest[j] = values[finite[-1], j]
    return Table(list(signals), latest.reshape(1, -1))


def rul_estimate(
    *,
    node: FabricationNode,
    now: datetime,
    hours_model: TrainedModel | None,
    cycles_model: TrainedModel | None,
) -> RulEstimate | RulNotApplied | None:
    """The raw RUL of `node` in its unit with the model's interval; None without a model for
    its unit or without readings; RulNotApplied when the node reads unlike what the model was
    trained on (its newest value of each signal against the model's training ranges)."""
    if hours_model is None and cycles_model is None:
        return None
    probe = node_series(node_id=node.pk, start=now - PROBE, end=now, max_points=PROBE_POINTS)
    position = rate = None
    if _counts_cycles(probe):
        if cycles_model is None:
            return None
        # raw readings (up to CYCLE_MAX_POINTS): the model was trained on one row per cycle,
        # and averaging equal time slices would blur cycles together
        history = node_series(
            node_id=node.pk,
            start=now - timedelta(days=RUL_DAYS),
            end=now,
            max_points=CYCLE_MAX_POINTS,
        )
        row_model = cycles_model
        times, values, signals, rate = per_cycle(history)
        if len(times) == 0:
            return None
        position = float(times[-1])
    else:
        if hours_model is None:
            return None
        history = node_series(
            node_id=node.pk,
            start=now - timedelta(days=RUL_DAYS),
            end=now,
            max_points=RUL_DAYS * 144,  # 10-minute slices, as trained
        )
        if len(history.times_s) == 0:
            return None
        row_model = hours_model
        times, values, signals = history.times_s, history.values, history.signals
    why_not = inputs_inapplicable(row=row_model, levels=latest_levels(values, signals))
    if why_not:
        return RulNotApplied(model=row_model.name, version=row_model.version, why=why_not)
    model = rul_model_load(row_model)
    predicted, low, high = model.predict_interval(model.history_row(times, values, signals))
    value = float(predicted[0])
    return RulEstimate(
        unit=model.unit,
        value=value,
        low=float(low[0]),
        high=float(high[0]),
        model=row_model.name,
        version=row_model.version,
        cap=model.cap,
        position=position,
        cycles_per_hour=rate,
        evidence={
            "model": f"{row_model.name} v{row_model.version}",
            "raw": round(value, 1),
            "interval": "5-95% of the model's errors on held-out units",
            "at_cycle": position,
            "at_cap": value >= model.cap - 1e-6,
        },
    )


def _elapsed(estimate: RulEstimate, previous: Prediction, now: datetime) -> float:
    if estimate.unit == rul.CYCLES:
        before = previous.rul_evidence.get("at_cycle")
        if isinstance(before, int | float) and estimate.position is not None:
            return max(estimate.position - float(before), 0.0)
        return math.inf
    return max((now - previous.at).total_seconds() / 3600.0, 0.0)


def _smooth(*, node: FabricationNode, estimate: RulEstimate, now: datetime) -> None:
    previous = (
        Prediction.objects.filter(
            node=node,
            rul_unit=estimate.unit,
            at__lt=now,
            at__gte=now - timedelta(hours=SMOOTHING_RESET_H),
        )
        .exclude(rul_value=None)
        .first()
    )
    if previous is None or "smoothed" not in previous.rul_evidence:
        estimate.evidence["smoothed"] = round(estimate.value, 3)
        return
    repaired = MaintenanceWindow.objects.filter(
        node=node, completed_at__gt=previous.at, completed_at__lte=now
    ).exists()
    if repaired:
        estimate.evidence["smoothed"] = round(estimate.value, 3)
        estimate.evidence["smoothing"] = "restarted: maintenance completed since the last scoring"
        return
    elapsed = _elapsed(estimate, previous, now)
    aged = max(float(previous.rul_evidence["smoothed"]) - elapsed, 0.0)
    tau = SMOOTHING_TAU[estimate.unit]
    if estimate.value < aged:
        tau /= FALLING_FASTER
    weight = 1.0 - math.exp(-elapsed / tau)
    smoothed = aged + weight * (estimate.value - aged)
    shift = smoothed - estimate.value
    estimate.value = smoothed
    estimate.low = max(estimate.low + shift, 0.0)
    estimate.high = max(estimate.high + shift, estimate.value)
    estimate.evidence["smoothed"] = round(smoothed, 3)
    estimate.evidence["smoothing"] = (
        f"weight {weight:.2f} on the new prediction after {elapsed:.3g} {estimate.unit}"
    )


def _in_unit(estimate: RulEstimate, hours: float) -> float | None:
    if estimate.unit == rul.HOURS:
        return hours
    return None if not estimate.cycles_per_hour else hours * estimate.cycles_per_hour


def critical_alert_evidence(node: FabricationNode) -> list[str]:
    """Each open critical alert of `node` (a signal past its rule's critical limit), said."""
    said = []
    for alert in Alert.objects.filter(
        node=node, resolved_at=None, severity=Severity.CRITICAL
    ).order_by("first_seen"):
        # a rate or rise rule judges the change per minute, not the reading
        per = {"rate": " a minute", "rise": " a minute"}.get(alert.mode, "")
        what = {"rate": "changing", "rise": "rising"}.get(alert.mode, "past its critical limit")
        limit = "faster than its critical limit" if per else ""
        said.append(
            # the alert's worst reading: its latest may already be back within the limit while
            # the alert waits out its minimum duration before it resolves
            f"{label(alert.signal, 'signal')} {' '.join(filter(None, (what, limit)))} since "
            f"{alert.first_seen:%Y-%m-%d %H:%M} (worst {quantity(alert.peak, alert.signal)}{per}, "
            f"limit {quantity(alert.threshold, alert.signal)}{per}; {alert.rule_text})"
        )
    return said


def rul_not_applied_fields(*, node: FabricationNode, why: str) -> dict[str, Any]:
    """Prediction / NodeHealth fields when the RUL model was not asked about the node (`why`):
    no remaining life, unless the evidence alone sets one (an open critical alert: 0, the
    failure is under way), and then without an interval: nothing measured it."""
    caps = critical_alert_evidence(node)
    evidence: dict[str, Any] = {"not_applied": why, "caps": caps}
    if not caps:
        return {**EMPTY_FIELDS, "rul_evidence": evidence}
    evidence["capped_at"] = 0.0
    return {
        **EMPTY_FIELDS,
        "rul_hours": 0.0,
        "rul_unit": rul.HOURS,
        "rul_value": 0.0,
        "rul_evidence": evidence,
    }


def rul_reconcile(
    *,
    node: FabricationNode,
    estimate: RulEstimate,
    now: datetime,
    failure_probability: float | None,
    vibration_hours_to_limit: float | None,
) -> RulEstimate:
    """Smooths `estimate` over the node's previous scorings, then caps it (and its interval)
    by the evidence: open critical alerts, a high failure probability, the vibration trend."""
    _smooth(node=node, estimate=estimate, now=now)
    caps: list[tuple[float, str]] = [(0.0, why) for why in critical_alert_evidence(node)]
    if (
        failure_probability is not None
        and failure_probability > settings.MAINTENANCE_FAILURE_PROBABILITY
    ):
        limit = _in_unit(estimate, HORIZON_H)
        if limit is not None:
            caps.append(
                (
                    limit,
                    f"failure model: {failure_probability:.0%} chance of failure within "
                    f"{HORIZON_H:g} h",
                )
            )
    if vibration_hours_to_limit is not None:
        limit = _in_unit(estimate, vibration_hours_to_limit)
        if limit is not None:
            caps.append(
                (limit, f"vibration trend reaches its limit in {vibration_hours_to_limit:.0f} h")
            )
    binding = [(limit, why) for limit, why in caps if limit < estimate.value]
    if binding:
        limit = min(limit for limit, _ in binding)
        estimate.value = limit
        estimate.low = min(estimate.low, limit)
        estimate.high = min(estimate.high, max(limit, estimate.low))
        estimate.evidence["capped_at"] = round(limit, 1)
    estimate.evidence["caps"] = [why for _, why in binding]
    return estimate

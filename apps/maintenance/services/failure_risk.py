"""A node's failure probability as shown and acted on: the failure model's probability of a
failure within its horizon (24 h), with its interval, smoothed over consecutive scorings and
held to the evidence the agent has (`failure_reconcile`), as the remaining life is
(services/remaining_life.py).

- Interval: the 90% Clopper-Pearson interval of the failure rate observed on the model's
  held-out rows scored in the same bin as the shown probability, stored with the model version
  in the registry (learning/calibration.py says why this interval). A version registered
  before calibration was stored has none, and the evidence says so.
- Smoothing: each new probability moves the shown one by 1 - exp(-elapsed / tau), tau
  SMOOTHING_TAU_H (30 min; a third of it when the probability rises: caution first), so
  scorings minutes apart do not make it jump. Restarted after a completed maintenance window,
  a gap longer than SMOOTHING_RESET_H or a new model version.
- Evidence floors, after smoothing, to the value and its interval: an open critical alert (a
  signal past its rule's critical limit: the failure under way) holds it at CRITICAL_FLOOR at
  least; a vibration trend that reaches its limit within the horizon at TREND_FLOOR. A floor
  that lifts it makes the interval [floor, the bin's upper end if above the floor, else 1],
  and is said in `evidence`.
- Applicability (`failure_inapplicable`): the model is not asked about a node that lacks an
  input every training row held, or whose reading of an input lies outside its training range
  (widened by RANGE_MARGIN); then only an open critical alert gives a probability (the floor,
  without an interval)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apps.core.models import TrainedModel
from apps.maintenance.learning.calibration import Bin, bin_for
from apps.maintenance.learning.features import Table
from apps.maintenance.models import MaintenanceWindow, Prediction
from apps.maintenance.services.remaining_life import critical_alert_evidence
from apps.maintenance.services.training import HORIZON_H, inputs_inapplicable
from apps.vendors.models import FabricationNode

SMOOTHING_TAU_H = 0.5
RISING_FASTER = 3.0
SMOOTHING_RESET_H = 48.0
CRITICAL_FLOOR = 0.9  # a signal past its critical limit: the failure is under way
TREND_FLOOR = 0.5  # the vibration trend reaches its limit within the horizon: more likely than not


def failure_inapplicable(*, row: TrainedModel, levels: Table) -> str:
    """Why the failure model `row` may not be asked about a node's `levels` (one row), or "":
    services/training.py inputs_inapplicable (a mill model asked about a printer would answer
    from its trees' outermost leaves, with any confidence)."""
    return inputs_inapplicable(row=row, levels=levels)


def calibration_bins(row: TrainedModel) -> list[Bin]:
    """The held-out reliability bins stored with a failure model version (none before
    failure-2)."""
    raw = ((row.metrics or {}).get("calibration") or {}).get("bins") or []
    return [Bin.from_dict(b) for b in raw]


@dataclass
class FailureEstimate:
    """A probability of failure within `horizon_h` hours and its interval (None when the
    model version stored no calibration)."""

    value: float
    low: float | None
    high: float | None
    model: str
    version: int
    bins: list[Bin] = field(default_factory=list)
    horizon_h: float = HORIZON_H
    evidence: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """Prediction / NodeHealth fields."""
        return {
            "failure_probability": round(self.value, 4),
            "failure_low": None if self.low is None else round(self.low, 4),
            "failure_high": None if self.high is None else round(self.high, 4),
            "failure_evidence": self.evidence,
        }

    def place(self) -> None:
        """Sets the interval to that of the bin the value falls in."""
        if not self.bins:
            self.low = self.high = None
            self.evidence["interval"] = (
                f"none: v{self.version} was registered before the held-out calibration was "
                "stored; its next training stores it"
            )
            self.evidence.pop("bin", None)
            return
        b = bin_for(self.value, self.bins)
        self.low, self.high = b.low, b.high
        self.evidence["bin"] = b.as_dict()
        self.evidence["interval"] = (
            f"{b.failures} of the {b.rows} held-out rows the model scored "
            f"{b.start:.0%}-{b.end:.0%} failed within {self.horizon_h:g} h "
            f"({b.observed:.0%}; 90% interval {b.low:.0%}-{b.high:.0%})"
        )


EMPTY_FAILURE_FIELDS: dict[str, Any] = {
    "failure_probability": None,
    "failure_low": None,
    "failure_high": None,
    "failure_evidence": {},
}


def failure_estimate(
    *, row: TrainedModel, probability: float, missing_inputs: list[str]
) -> FailureEstimate:
    """The model's raw probability for a node, with its held-out interval and what it rests
    on: the model, its training data, and which of its inputs the node does not report."""
    horizon = float((row.training or {}).get("horizon_h") or HORIZON_H)
    estimate = FailureEstimate(
        value=probability,
        low=None,
        high=None,
        model=row.name,
        version=row.version,
        bins=calibration_bins(row),
        horizon_h=horizon,
        evidence={
            "model": f"{row.name} v{row.version}",
            "version": row.version,
            "raw": round(probability, 4),
            "horizon_h": horizon,
            "trained_on": list((row.training or {}).get("sources") or []),
            "missing_inputs": missing_inputs,
        },
    )
    estimate.place()
    return estimate


def _smooth(*, node: FabricationNode, estimate: FailureEstimate, now: datetime) -> None:
    previous = (
        Prediction.objects.filter(
            node=node, at__lt=now, at__gte=now - timedelta(hours=SMOOTHING_RESET_H)
        )
        .exclude(failure_probability=None)
        .first()
    )
    before = previous.failure_evidence if previous is not None else {}
    if previous is None or "smoothed" not in before:
        estimate.evidence["smoothed"] = round(estimate.value, 4)
        return
    restart = ""
    if before.get("version") != estimate.version:
        restart = "restarted: a new model version since the last scoring"
    elif MaintenanceWindow.objects.filter(
        node=node, completed_at__gt=previous.at, completed_at__lte=now
    ).exists():
        restart = "restarted: maintenance completed since the last scoring"
    if restart:
        estimate.evidence["smoothed"] = round(estimate.value, 4)
        estimate.evidence["smoothing"] = restart
        return
    elapsed = max((now - previous.at).total_seconds() / 3600.0, 0.0)
    last = float(before["smoothed"])
    tau = SMOOTHING_TAU_H / (RISING_FASTER if estimate.value > last else 1.0)
    weight = 1.0 - math.exp(-elapsed / tau)
    estimate.value = min(max(last + weight * (estimate.value - last), 0.0), 1.0)
    estimate.evidence["smoothed"] = round(estimate.value, 4)
    estimate.evidence["smoothing"] = (
        f"weight {weight:.2f} on the new probability after {elapsed * 60:.3g} min"
    )


def failure_reconcile(
    *,
    node: FabricationNode,
    estimate: FailureEstimate,
    now: datetime,
    vibration_hours_to_limit: float | None,
) -> FailureEstimate:
    """Smooths `estimate` over the node's previous scorings, places its interval, then raises
    it (and its interval) to what the evidence demands: open critical alerts, the vibration
    trend."""
    _smooth(node=node, estimate=estimate, now=now)
    estimate.place()
    floors = [(CRITICAL_FLOOR, why) for why in critical_alert_evidence(node)]
    if vibration_hours_to_limit is not None and vibration_hours_to_limit <= estimate.horizon_h:
        floors.append(
            (
                TREND_FLOOR,
                f"vibration trend reaches its limit in {vibration_hours_to_limit:.0f} h, "
                f"within the {estimate.horizon_h:g} h horizon",
            )
        )
    binding = [(floor, why) for floor, why in floors if floor > estimate.value]
    if binding:
        floor = max(f for f, _ in binding)
        estimate.value = floor
        if estimate.low is not None and estimate.high is not None:
            # at least the floor; nothing measured an upper end below certainty unless the
            # model's own bin reaches past the floor
            estimate.low = max(estimate.low, floor)
            estimate.high = estimate.high if estimate.high > floor else 1.0
        estimate.evidence["floored_at"] = floor
    estimate.evidence["floors"] = [why for _, why in binding]
    return estimate


def failure_not_applied_fields(*, node: FabricationNode, why: str) -> dict[str, Any]:
    """Prediction / NodeHealth fields when the failure model was not asked about the node
    (`why`): no probability, unless the evidence alone sets one (an open critical alert: at
    least CRITICAL_FLOOR), and then without an interval: nothing measured it."""
    floors = critical_alert_evidence(node)
    evidence: dict[str, Any] = {"not_applied": why, "floors": floors}
    if not floors:
        return {**EMPTY_FAILURE_FIELDS, "failure_evidence": evidence}
    evidence["floored_at"] = CRITICAL_FLOOR
    return {
        **EMPTY_FAILURE_FIELDS,
        "failure_probability": CRITICAL_FLOOR,
        "failure_evidence": evidence,
    }

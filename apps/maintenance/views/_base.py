"""What the maintenance pages share: labels, limits, the page renderer and small formatting
helpers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.core.exceptions import Conflict
from apps.core.labels import is_code, label_with_unit
from apps.maintenance.models import (
    MaintenanceWindow,
    Prediction,
    Severity,
    Ticket,
)
from apps.maintenance.selectors import (
    registry_can_view,
)
from apps.users.access import action_required
from apps.users.roles import Action, scope_for
from apps.users.types import AuthenticatedHttpRequest

SERVICE_ERRORS = (ValidationError, PermissionDenied, Conflict)
TS = Ticket.Status
SEVERITIES = [Severity.CRITICAL, Severity.WARNING, Severity.INFO]
QUEUE_PAGE_SIZE = 25
NO_SITE = "No site"
# The ticket's evidence chart: from 30 minutes before it was first seen to 10 after it was last
# seen, at most two days (the latest) and 600 points (averaged slices beyond that).
EVIDENCE_BEFORE = timedelta(minutes=30)
EVIDENCE_AFTER = timedelta(minutes=10)
EVIDENCE_MAX_SPAN = timedelta(hours=48)
CHART_MAX_POINTS = 600
SIGNALS_OF_ISSUE = {
    Ticket.IssueType.OVERHEATING: ["temperature_c"],
    Ticket.IssueType.VIBRATION: ["vibration_mm_s"],
    Ticket.IssueType.POWER_SPIKE: ["power_kw"],
}
MAIN_SIGNALS = ["temperature_c", "vibration_mm_s", "power_kw"]
TRANSITION_LABELS = {
    TS.ACKNOWLEDGED: "Acknowledge",
    TS.IN_PROGRESS: "Start work",
    TS.CLOSED: "Close",
}
# Registry metrics in the order people look for them; other numeric keys follow.
METRIC_ORDER = [
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "brier",
    "rmse_h",
    "mae_h",
    "rmse_cycles",
    "false_alarms_per_node_week",
    "false_alarms_per_node_week_low",
    "false_alarm_bound_per_node_week",
]
CHART_METRICS = ["f1", "roc_auc", "mae_h", "rmse_h", "precision", "recall"]
METRIC_LABELS = {
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "roc_auc": "ROC-AUC",
    "brier": "Brier score (held-out)",
    "calibration": "Held-out calibration (the failure probability's interval)",
    "rmse_h": "RMSE (h)",
    "mae_h": "MAE (h)",
    "false_alarms_per_node_week": "False alarms per node-week (held-out healthy)",
    "false_alarms_per_node_week_low": "... at least, at 95% confidence (checked against the bound)",
    "false_alarm_bound_per_node_week": "Bound (alarms per node-week)",
    "rmse_cycles": "RMSE (cycles)",
    "mae_cycles": "MAE (cycles)",
}
COMPONENT_LABELS = {
    "offline": "Offline",
    "alerts": "Open alerts",
    "tickets": "Open tickets",
    "anomaly": "Anomalous behaviour",
    "failure_risk": "Failure risk",
    "remaining_life": "Remaining life below plan",
}
EVIDENCE_LABELS = {
    "source": "Source",
    "signal": "Signal",
    "signals": "Signals",
    "value": "Reading",
    "threshold": "Threshold",
    "rule": "Rule",
    "since": "Out of limits since",
    "at": "Latest reading at",
    "alert": "Alert",
    "readings": "Readings",
    "scores": "Scores",
    "model": "Model",
    "models": "Models",
    "models_used": "Models",
    "model_version": "Model version",
    "description": "Description",
    "anomaly_score": "Anomaly score",
    "anomaly_threshold": "Anomaly threshold",
    "failure_probability": "Failure probability",
    "rul_hours": "Remaining useful life (h)",
    "rul": "Remaining useful life",
    "rul_unit": "Unit",
    "rul_value": "Remaining useful life",
    "rul_low": "Interval from",
    "rul_high": "Interval to",
    "rul_evidence": "What the remaining life rests on",
    "failure_interval": "Failure probability, 90% interval",
    "failure_evidence": "What the failure probability rests on",
    "floors": "Raised by",
    "floored_at": "Raised to",
    "not_applied": "Model not asked",
    "missing_inputs": "Inputs the node does not report",
    "trained_on": "Trained on",
    "raw": "Model's prediction",
    "caps": "Capped by",
    "capped_at": "Capped at",
    "vibration_hours_to_limit": "Hours until the vibration limit",
}

maintenance_required = action_required(Action.TICKET_MANAGE)


def _render(
    request: AuthenticatedHttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """render() plus what the maintenance pages' own navigation needs."""
    nav = {
        "show_maintenance": scope_for(request.user, Action.TICKET_MANAGE) is not None,
        "show_registry": registry_can_view(user=request.user),
    }
    return render(request, template, {**nav, **context}, status=status)


# --- Small helpers ----------------------------------------------------------------------------


def _band(score: float | None) -> str:
    if score is None:
        return "unknown"
    if score >= 80:
        return "good"
    return "fair" if score >= 50 else "poor"


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _thin(rows: list[Any], limit: int = CHART_MAX_POINTS) -> list[Any]:
    """Every n-th row so at most `limit` remain (the newest always kept)."""
    if len(rows) <= limit:
        return rows
    step = -(-len(rows) // limit)
    return rows[::-1][::step][::-1]


def _readable(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        when = parse_datetime(value) if len(value) >= 16 and value[4:5] == "-" else None
        if when is None:
            # a code ("power_kw", "rmse_h") reads as its label; any other text as it is
            return label_with_unit(value) if is_code(value) else value
        if timezone.is_aware(when):
            when = timezone.localtime(when)
        return f"{when:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, list):
        return ", ".join(_readable(v) for v in value) or "—"
    if isinstance(value, dict):
        return "; ".join(f"{_nested_label(k)}: {_readable(v)}" for k, v in value.items()) or "—"
    return str(value)


def _label(key: str) -> str:
    return EVIDENCE_LABELS.get(key) or label_with_unit(key)


def _nested_label(key: str) -> str:
    return EVIDENCE_LABELS.get(key) or (label_with_unit(key) if is_code(key) else key)


def _evidence_rows(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """The evidence dict as label / text rows; a nested dict (readings, scores, models) becomes
    a list of its own rows."""
    rows = []
    for key, value in evidence.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, dict) and value:
            # nested keys are often names (models, signals): labelled when known, else as they are
            items = [(_nested_label(str(k)), _readable(v)) for k, v in value.items()]
            rows.append({"label": _label(key), "text": "", "items": items})
        else:
            rows.append({"label": _label(key), "text": _readable(value), "items": []})
    return rows


def _maybe_int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None


def _prediction_charts(
    rows: list[Prediction],
    *,
    with_rul: bool,
    x_range: tuple[datetime, datetime] | None = None,
) -> list[dict[str, Any]]:
    """Anomaly score against its threshold with the failure probability; RUL on its own. A
    series without a single value is left out, and a chart left without series too: scorings
    made while no trained model was active hold no values, and an empty chart drew a bare axis
    from the epoch ("Jan 1, 12:00 AM"). The time axis spans `x_range` when given, else the
    scorings."""
    rows = _thin(rows)
    if not rows:
        return []

    def line(attr: str) -> list[list[Any]]:
        return [[_ms(r.at), getattr(r, attr)] for r in rows if getattr(r, attr) is not None]

    start, end = x_range or (rows[0].at, rows[-1].at)
    span = [_ms(start), _ms(end)] if end > start else None
    candidates: list[dict[str, Any]] = [
        {
            "id": "chart-scores",
            "title": "Anomaly score and failure probability",
            "x": "time",
            "series": [
                {"label": "Anomaly score", "data": line("anomaly_score"), "axis": "y"},
                {
                    "label": "Anomaly threshold",
                    "data": line("anomaly_threshold"),
                    "axis": "y",
                    "dash": True,
                },
                {"label": "Failure probability", "data": line("failure_probability"), "axis": "y1"},
            ],
            "axes": {"y": "Anomaly score", "y1": "Failure probability (0-1)"},
            "y_min": 0,
            "y1_range": [0, 1],
        }
    ]
    rul = line("rul_hours")
    if with_rul and rul:
        candidates.append(
            {
                "id": "chart-rul",
                "title": "Remaining useful life",
                "x": "time",
                "series": [
                    {"label": "Remaining useful life (h)", "data": rul, "axis": "y"},
                    {
                        "label": "Hours until the vibration limit",
                        "data": line("vibration_hours_to_limit"),
                        "axis": "y",
                        "dash": True,
                    },
                ],
                "axes": {"y": "Hours"},
            }
        )
    charts = []
    for chart in candidates:
        chart["series"] = [s for s in chart["series"] if s["data"]]
        if not chart["series"]:
            continue
        if span:
            chart["x_range"] = span
        charts.append(chart)
    return charts


def _prediction_gap(rows: list[Prediction]) -> str:
    """Why a period's predictions draw no chart."""
    if not rows:
        return (
            "The models did not score this node in this period: they score a node while it "
            "sends telemetry and a trained model is active."
        )
    return (
        f"The node was scored {len(rows)} time{'s' if len(rows) != 1 else ''} in this period, "
        "but no trained model was active, so there are no scores to draw. The model registry "
        "shows which models are trained and active."
    )


def _window_scheduled(window: MaintenanceWindow) -> str:
    if window.status == MaintenanceWindow.Status.ACTIVE:
        return (
            f"Maintenance window #{window.pk} started: {window.node.name} is in maintenance "
            "and its work moves to other nodes."
        )
    return f"Maintenance window #{window.pk} planned from {window.starts_at:%Y-%m-%d %H:%M} UTC."

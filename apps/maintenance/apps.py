from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.apps import AppConfig


class MaintenanceConfig(AppConfig):
    name = "apps.maintenance"
    label = "maintenance"
    verbose_name = "Maintenance"
    # The twin page's machine panel finds this here (apps/twins/providers.py): twins and
    # maintenance are siblings and may not import each other. Set in ready().
    twin_node_care: Callable[..., object] | None = None

    def ready(self) -> None:
        from apps.jobs.providers import (
            machine_fault_reported,
            node_went_silent,
            register_blocked_provider,
            register_health_provider,
            register_silence_provider,
        )
        from apps.maintenance.node_care import node_care
        from apps.notify.services import escalation_check_register
        from apps.telemetry.services import telemetry_ingested

        self.twin_node_care = node_care

        telemetry_ingested.connect(_on_ingest, dispatch_uid="maintenance.thresholds")
        register_blocked_provider(_planned_windows)
        register_health_provider(_node_risks)
        register_silence_provider(_silent_after)
        machine_fault_reported.connect(_on_machine_fault, dispatch_uid="maintenance.fault")
        node_went_silent.connect(_on_node_silent, dispatch_uid="maintenance.silent")
        _forget_cached_rules_on_change()
        _register_labels()
        escalation_check_register("ticket", _ticket_acknowledged)


def _ticket_acknowledged(ticket_id: int) -> bool:
    """For escalation: someone took the ticket (acknowledged, started or resolved it), or it
    is gone."""
    from apps.maintenance.models import Ticket

    ticket = Ticket.objects.filter(pk=ticket_id).only("status", "acknowledged_at").first()
    return ticket is None or ticket.acknowledged_at is not None or ticket.status != "open"


def _register_labels() -> None:
    """The words pages use for tickets, rules and the registry's models and metrics."""
    from apps.core.labels import labels_register
    from apps.maintenance.models import MaintenanceWindow, Severity, ThresholdRule, Ticket
    from apps.maintenance.views._base import COMPONENT_LABELS, EVIDENCE_LABELS, METRIC_LABELS

    labels_register("severity", Severity.choices)
    labels_register("issue_type", Ticket.IssueType.choices)
    labels_register("ticket_status", Ticket.Status.choices)
    labels_register("rule_mode", ThresholdRule.Mode.choices)
    labels_register("window_kind", MaintenanceWindow.Kind.choices)
    labels_register("health_component", COMPONENT_LABELS)
    labels_register("evidence", EVIDENCE_LABELS)
    labels_register("metric", METRIC_LABELS)
    # what the RUL and failure models report besides the headline metrics (learning/rul.py)
    labels_register(
        "metric",
        {
            "near_failure": "Near failure",
            "within_h": "Window before failure (h)",
            "within_cycles": "Window before failure (cycles)",
            "baseline": "Baseline",
            "baseline_h": "Baseline (h)",
            "baseline_cycles": "Baseline (cycles)",
            "interval_coverage": "Interval coverage",
            "flag_everything_f1": "F1 when flagging everything",
            "comparison": "Comparison",
            "cap": "Cap",
            "rows": "Rows",
            "units": "Units",
            "unit": "Unit",
        },
    )
    labels_register(
        "model",
        {
            "maintenance.failure": "Failure prediction",
            "maintenance.rul": "Remaining useful life (hours)",
            "maintenance.rul.cycles": "Remaining useful life (cycles)",
            "jobs.duration": "Job duration",
        },
    )


def _forget_cached_rules_on_change() -> None:
    """Ingest keeps each node's rules for a few seconds (services/rule_cache.py): a rule or node
    saved or deleted in this process empties that cache at once."""
    from django.db.models.signals import post_delete, post_save

    from apps.maintenance.models import ThresholdRule
    from apps.maintenance.services.rule_cache import node_rules_forget
    from apps.vendors.models import FabricationNode

    for model in (ThresholdRule, FabricationNode):
        for signal in (post_save, post_delete):
            signal.connect(
                node_rules_forget, sender=model, dispatch_uid=f"maintenance.rules.{model.__name__}"
            )


def _node_risks(node_ids: Any, now: Any, horizon_h: float) -> dict[int, Any]:
    """The scheduler skips sick and offline nodes and weighs the others' health."""
    from apps.maintenance.selectors import node_risks

    return node_risks(node_ids=node_ids, now=now)


def _silent_after(node_ids: Any) -> dict[int, Any]:
    """Self-healing calls a node silent no sooner than the fleet monitor calls it offline:
    after MAINTENANCE_OFFLINE_SAMPLES readings of its cadence (configured, else learned), so a
    node that reports every 5 minutes keeps its work for 15. Nodes of unknown cadence are left
    to JOBS_NODE_SILENT_MINUTES."""
    from apps.maintenance.cadence import offline_after
    from apps.maintenance.models import NodeHealth

    healths = NodeHealth.objects.filter(node_id__in=list(node_ids)).only(
        "node_id", "expected_cadence_s", "cadence_s"
    )
    return {h.node_id: offline_after(h.cadence) for h in healths if h.cadence}


def _planned_windows(node_ids: Any, now: Any, horizon_h: float) -> dict[int, list[Any]]:
    """The scheduler keeps work off a node during its planned maintenance windows."""
    from datetime import timedelta

    from apps.maintenance.models import MaintenanceWindow

    windows: dict[int, list[Any]] = {}
    for node_id, starts, ends in MaintenanceWindow.objects.filter(
        node_id__in=node_ids,
        status__in=[MaintenanceWindow.Status.PLANNED, MaintenanceWindow.Status.ACTIVE],
        starts_at__lt=now + timedelta(hours=horizon_h),
        ends_at__gt=now,
    ).values_list("node_id", "starts_at", "ends_at"):
        windows.setdefault(node_id, []).append((starts, ends))
    return windows


def _on_ingest(sender: Any, node_id: int, point: Any, **kwargs: Any) -> None:
    """Threshold rules run at once on the newest reading of each ingest request (a few small
    queries); the models score in Celery, never here."""
    from apps.maintenance.services.alerts import alerts_evaluate
    from apps.telemetry.validation import SIGNALS

    readings = {s: v for s, v in zip(SIGNALS, point.values, strict=True) if v is not None}
    for key, value in (point.extra or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            readings.setdefault(key, float(value))
    alerts_evaluate(node_id=node_id, at=point.time, readings=readings)


def _on_machine_fault(sender: Any, node_id: int, part_id: int, reason: str, **kwargs: Any) -> None:
    """Sent after commit by the jobs work API: the ticket records the fault."""
    from apps.maintenance.services import machine_fault_ticket

    machine_fault_ticket(node_id=node_id, part_id=part_id, reason=reason)


def _on_node_silent(sender: Any, node_id: int, silent_since: Any, **kwargs: Any) -> None:
    """Sent after commit by self-healing, which has moved the silent node's work."""
    from apps.maintenance.services import node_mark_offline

    node_mark_offline(node_id=node_id, last_seen=silent_since)

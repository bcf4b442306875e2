"""The fleet monitor (Celery beat, every minute): each in-service node's health score 0-100,
its reporting cadence learned, online/offline (silent for MAINTENANCE_OFFLINE_SAMPLES samples of
that cadence, at least MAINTENANCE_OFFLINE_MINUTES), due maintenance windows started and ticket
priorities aged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.maintenance.cadence import cadences_learn, offline_after
from apps.maintenance.models import UNRESOLVED, Alert, NodeHealth, Severity, Ticket
from apps.maintenance.services.realtime import maintenance_broadcast
from apps.maintenance.services.tickets import ticket_recipients, tickets_reprioritise
from apps.maintenance.services.windows import windows_start_due
from apps.notify.models import EventKind
from apps.notify.services import event_raise
from apps.telemetry.selectors import latest_points
from apps.vendors.lifecycle import ACTIVE_STATUSES
from apps.vendors.models import FabricationNode

# Points a node loses, capped at 100 in all.
ALERT_PENALTY = {Severity.WARNING: 10.0, Severity.CRITICAL: 30.0}
TICKET_PENALTY = {Severity.INFO: 2.0, Severity.WARNING: 5.0, Severity.CRITICAL: 10.0}
OFFLINE_PENALTY = 40.0
ANOMALY_PENALTY = 20.0
FAILURE_PENALTY = 40.0  # times the predicted failure probability
RUL_PENALTY = 20.0  # when the remaining life is shorter than the planned horizon


def health_score(
    *,
    online: bool,
    open_alerts: list[str],
    open_tickets: list[str],
    anomalous: bool,
    failure_probability: float | None,
    rul_short: bool,
) -> tuple[float, dict[str, float]]:
    """The score and what took points off (each component's penalty)."""
    parts: dict[str, float] = {}
    if not online:
        parts["offline"] = OFFLINE_PENALTY
    alerts = sum(ALERT_PENALTY.get(Severity(s), 0.0) for s in open_alerts)
    if alerts:
        parts["alerts"] = alerts
    tickets = sum(TICKET_PENALTY.get(Severity(s), 0.0) for s in open_tickets)
    if tickets:
        parts["tickets"] = tickets
    if anomalous:
        parts["anomaly"] = ANOMALY_PENALTY
    if failure_probability:
        parts["failure_risk"] = round(FAILURE_PENALTY * failure_probability, 1)
    if rul_short:
        parts["remaining_life"] = RUL_PENALTY
    return max(0.0, round(100.0 - sum(parts.values()), 1)), parts


@dataclass
class MonitorReport:
    nodes: int = 0
    went_offline: int = 0
    came_online: int = 0
    windows_started: int = 0
    reprioritised: int = 0


def fleet_monitor(*, now: datetime | None = None) -> MonitorReport:
    now = now or timezone.now()
    report = MonitorReport()
    report.windows_started = len(windows_start_due(now=now))
    nodes = list(
        FabricationNode.objects.filter(
            approval=FabricationNode.Approval.APPROVED, status__in=ACTIVE_STATUSES
        ).only("id", "name", "vendor_id", "site_id", "status")
    )
    last_seen = {p.node_id: p.time for p in latest_points(node_ids=[n.pk for n in nodes])}
    learned = cadences_learn(node_ids=list(last_seen), now=now)
    alerts: dict[int, list[str]] = {}
    for node_id, severity in Alert.objects.filter(
        resolved_at__isnull=True, node__in=nodes
    ).values_list("node_id", "severity"):
        alerts.setdefault(node_id, []).append(severity)
    tickets: dict[int, list[str]] = {}
    for node_id, severity in Ticket.objects.filter(
        status__in=UNRESOLVED, node__in=nodes
    ).values_list("node_id", "severity"):
        tickets.setdefault(node_id, []).append(severity)
    for node in nodes:
        seen = last_seen.get(node.pk)
        with transaction.atomic():
            health, _ = NodeHealth.objects.select_for_update().get_or_create(node=node)
            health.cadence_s = learned.get(node.pk, health.cadence_s)
            online = seen is not None and now - seen <= offline_after(health.cadence)
            was_online = health.online
            anomalous = (
                health.anomaly_score is not None
                and health.anomaly_threshold is not None
                and health.anomaly_score > health.anomaly_threshold
            )
            # the learned RUL when a model exists, else the vibration trend's hours to its limit
            remaining = (
                health.rul_hours
                if health.rul_hours is not None
                else health.vibration_hours_to_limit
            )
            rul_short = remaining is not None and remaining < health.planned_horizon_h
            score, parts = health_score(
                online=online,
                open_alerts=alerts.get(node.pk, []),
                open_tickets=tickets.get(node.pk, []),
                anomalous=anomalous,
                failure_probability=health.failure_probability if online else None,
                rul_short=rul_short,
            )
            health.score, health.components, health.online = score, parts, online
            health.last_seen, health.computed_at = seen, now
            if was_online and not online:
                health.went_offline_at = now
                report.went_offline += 1
                _raise_offline(node, seen)
            elif online and not was_online:
                health.went_offline_at = None
                report.came_online += 1
            health.save()
            event = {
                "type": "node.health",
                "node": node.pk,
                "score": score,
                "online": online,
                "components": parts,
            }
            if was_online != online:
                event["type"] = "node.online" if online else "node.offline"
            maintenance_broadcast(node, event)
        report.nodes += 1
    report.reprioritised = tickets_reprioritise(now=now)
    return report


MAX_CADENCE_S = 7 * 86400.0


@transaction.atomic
def node_cadence_set(*, node: FabricationNode, expected_s: float | None) -> NodeHealth:
    """Configure how often the node reports (seconds), or None to learn it from its telemetry."""
    if expected_s is not None and not 0 < expected_s <= MAX_CADENCE_S:
        raise ValidationError(
            {"expected_cadence_s": [f"Between 0 and {MAX_CADENCE_S:.0f} s (a week), or unset."]}
        )
    health, _ = NodeHealth.objects.select_for_update().get_or_create(node=node)
    health.expected_cadence_s = expected_s
    health.save(update_fields=["expected_cadence_s"])
    return health


@transaction.atomic
def node_mark_offline(*, node_id: int, last_seen: datetime, now: datetime | None = None) -> None:
    """Self-healing found the node silent and moved its work: offline now, not at the
    monitor's next run (which scores it)."""
    now = now or timezone.now()
    node = FabricationNode.objects.get(pk=node_id)
    health, _ = NodeHealth.objects.select_for_update().get_or_create(node=node)
    if not health.online and health.went_offline_at is not None:
        return
    health.online, health.last_seen = False, last_seen
    health.went_offline_at = health.went_offline_at or now
    health.save(update_fields=["online", "last_seen", "went_offline_at"])
    _raise_offline(node, last_seen)
    maintenance_broadcast(
        node, {"type": "node.offline", "node": node.pk, "score": health.score, "online": False}
    )


def _raise_offline(node: FabricationNode, last_seen: datetime | None) -> None:
    seen = f"last heard from {last_seen:%Y-%m-%d %H:%M} UTC" if last_seen else "never heard from"
    event_raise(
        kind=EventKind.NODE_OFFLINE,
        severity=Severity.WARNING.value,
        title=f"Node offline: {node.name}",
        body=f"{node.name} is silent ({seen}).",
        link=f"/maintenance/nodes/{node.pk}/",
        subject=f"node:{node.pk}",
        organizations=[node.vendor_id, node.site_id],
        users=ticket_recipients(node),
    )

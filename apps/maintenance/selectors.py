"""Who may see which node's maintenance (alerts, tickets, predictions, windows) and the reads
the pages and the API share. The TICKET_MANAGE scope decides: admins everything, vendors their
own nodes, operators the nodes at the sites they operate; other roles nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from apps.core.models import TrainedModel
from apps.jobs.scheduler import NodeRisk
from apps.maintenance.cadence import offline_after
from apps.maintenance.models import (
    UNRESOLVED,
    Alert,
    MaintenanceWindow,
    NodeHealth,
    Prediction,
    ThresholdRule,
    Ticket,
    TicketEvent,
)
from apps.maintenance.services.training import FAILURE
from apps.telemetry.selectors import latest_points
from apps.users.models import User
from apps.users.roles import Action, Role, scope_for
from apps.vendors.models import FabricationNode
from apps.vendors.selectors import nodes_in_scope

OPS_ROLES = frozenset({Role.ADMIN, Role.OPERATOR, Role.ENGINEER})


def maintained_nodes(*, user: User) -> QuerySet[FabricationNode]:
    return nodes_in_scope(user=user, action=Action.TICKET_MANAGE)


def node_rule_candidates(*, node: FabricationNode) -> QuerySet[ThresholdRule]:
    """The rules that may apply to `node`: the defaults, its kind's and its own."""
    return ThresholdRule.objects.filter(
        Q(node__isnull=True, node_kind="")
        | Q(node__isnull=True, node_kind=node.kind)
        | Q(node=node)
    )


def rules_can_view(*, user: User) -> bool:
    """Whether `user`'s role maintains nodes at all (the rules list; which rules: rule_list)."""
    return scope_for(user, Action.TICKET_MANAGE) is not None


def rule_list(*, user: User) -> QuerySet[ThresholdRule]:
    """The platform's default rules, the per-kind overrides and the per-node overrides of the
    nodes `user` maintains."""
    return ThresholdRule.objects.filter(
        Q(node__isnull=True) | Q(node__in=maintained_nodes(user=user).values("pk"))
    ).select_related("node")


def rule_get_for_user(*, user: User, pk: int) -> ThresholdRule:
    """404, not 403, so the ids of other nodes' rules don't leak."""
    return get_object_or_404(rule_list(user=user), pk=pk)


def maintenance_can_view(*, user: User, node: FabricationNode) -> bool:
    return maintained_nodes(user=user).filter(pk=node.pk).exists()


def maintained_node_get(*, user: User, pk: int) -> FabricationNode:
    """404, not 403, so ids don't leak."""
    return get_object_or_404(maintained_nodes(user=user), pk=pk)


def _in_scope(user: User) -> Q:
    return Q(node__in=maintained_nodes(user=user).values("pk"))


def ticket_list(
    *,
    user: User,
    status: list[str] | None = None,
    severity: list[str] | None = None,
    issue_type: list[str] | None = None,
    node_id: int | None = None,
    site_id: int | None = None,
    assignee_id: int | None = None,
    active: bool | None = None,
) -> QuerySet[Ticket]:
    qs = Ticket.objects.filter(_in_scope(user)).select_related(
        "node", "node__vendor", "node__site", "assignee"
    )
    if status:
        qs = qs.filter(status__in=status)
    if severity:
        qs = qs.filter(severity__in=severity)
    if issue_type:
        qs = qs.filter(issue_type__in=issue_type)
    if node_id is not None:
        qs = qs.filter(node_id=node_id)
    if site_id is not None:
        qs = qs.filter(node__site_id=site_id)
    if assignee_id is not None:
        qs = qs.filter(assignee_id=assignee_id)
    if active is True:
        qs = qs.filter(status__in=UNRESOLVED)
    elif active is False:
        qs = qs.exclude(status__in=UNRESOLVED)
    return qs


def ticket_get_for_user(*, user: User, pk: int) -> Ticket:
    return get_object_or_404(ticket_list(user=user), pk=pk)


def ticket_events(*, ticket: Ticket) -> QuerySet[TicketEvent]:
    return ticket.events.select_related("author")


def alert_list(
    *, user: User, node_id: int | None = None, open_only: bool = False
) -> QuerySet[Alert]:
    qs = Alert.objects.filter(_in_scope(user)).select_related("node")
    if node_id is not None:
        qs = qs.filter(node_id=node_id)
    if open_only:
        qs = qs.filter(resolved_at__isnull=True)
    return qs


def prediction_list(*, user: User, node_id: int, hours: float = 24) -> QuerySet[Prediction]:
    since = timezone.now() - timedelta(hours=hours)
    return Prediction.objects.filter(_in_scope(user), node_id=node_id, at__gte=since).order_by("at")


def window_list(*, user: User, node_id: int | None = None) -> QuerySet[MaintenanceWindow]:
    qs = MaintenanceWindow.objects.filter(_in_scope(user)).select_related("node", "ticket")
    if node_id is not None:
        qs = qs.filter(node_id=node_id)
    return qs


def window_get_for_user(*, user: User, pk: int) -> MaintenanceWindow:
    return get_object_or_404(window_list(user=user), pk=pk)


def fleet_health(*, user: User) -> QuerySet[FabricationNode]:
    """The nodes in scope with their health row and open tickets by severity."""
    active = Q(tickets__status__in=UNRESOLVED)
    return (
        maintained_nodes(user=user)
        .exclude(status=FabricationNode.Status.DECOMMISSIONED)
        .select_related("health")
        .annotate(
            tickets_critical=Count("tickets", filter=active & Q(tickets__severity="critical")),
            tickets_warning=Count("tickets", filter=active & Q(tickets__severity="warning")),
            tickets_info=Count("tickets", filter=active & Q(tickets__severity="info")),
        )
        .order_by("site__name", "name")
    )


def health_of(node: FabricationNode) -> NodeHealth | None:
    try:
        return node.health
    except NodeHealth.DoesNotExist:
        return None


FAILURE_WITHIN_H = 24.0  # the failure model predicts failure within a day
NAMED_TICKETS = 3  # critical tickets named in a node's reasons


def node_risks(*, node_ids: Sequence[int], now: datetime) -> dict[int, NodeRisk]:
    """What maintenance tells the scheduler about each node (a jobs health provider); nodes
    with nothing to say are left out (healthy).

    - excluded: an unresolved critical ticket, or offline: the node has reported telemetry
      before and sent nothing for longer than its offline limit (cadence.offline_after: samples
      of its cadence, at least MAINTENANCE_OFFLINE_MINUTES; the fleet monitor's rule, read from
      the newest point, so a node that reports again gets work at once rather
      than at the monitor's next run). A node that never reported is not offline.
    - risk: the fleet monitor's penalties (alerts, tickets, anomaly, failure risk, short
      remaining life) / 100, without its offline penalty (judged live above).
    - rul_h: the learned remaining life, else the vibration trend's hours to its limit;
      failure_p: the failure model's probability within a day."""
    ids = list(node_ids)
    healths = {h.node_id: h for h in NodeHealth.objects.filter(node_id__in=ids)}
    critical: dict[int, list[int]] = {}
    for node_id, pk in (
        Ticket.objects.filter(node_id__in=ids, status__in=UNRESOLVED, severity="critical")
        .order_by("pk")
        .values_list("node_id", "pk")
    ):
        critical.setdefault(node_id, []).append(pk)
    silent = {
        p.node_id: p.time
        for p in latest_points(node_ids=ids)
        if now - p.time > offline_after(getattr(healths.get(p.node_id), "cadence", None))
    }
    risks: dict[int, NodeRisk] = {}
    for node_id in ids:
        health = healths.get(node_id)
        tickets = critical.get(node_id, [])
        if health is None and not tickets and node_id not in silent:
            continue
        reasons = [f"critical ticket #{pk}" for pk in tickets[:NAMED_TICKETS]]
        if len(tickets) > NAMED_TICKETS:
            reasons.append(f"{len(tickets) - NAMED_TICKETS} more critical ticket(s)")
        if node_id in silent:
            minutes = int((now - silent[node_id]).total_seconds() // 60)
            reasons.append(f"offline for {minutes} min")
        risk, rul_h, failure_p = 0.0, None, None
        if health is not None:
            penalties = {k: v for k, v in (health.components or {}).items() if k != "offline"}
            risk = min(1.0, sum(penalties.values()) / 100.0)
            rul_h = health.rul_hours
            if rul_h is None:
                rul_h = health.vibration_hours_to_limit
            failure_p = health.failure_probability
            if "anomaly" in penalties:
                reasons.append("anomaly flagged")
            if "alerts" in penalties:
                reasons.append("open alerts")
            if failure_p is not None and failure_p >= 0.1:
                reasons.append(f"failure risk {failure_p:.2f} within a day")
            if rul_h is not None and rul_h < health.planned_horizon_h:
                reasons.append(f"RUL {rul_h:.0f} h")
        risks[node_id] = NodeRisk(
            risk=risk,
            excluded=bool(tickets) or node_id in silent,
            reasons=tuple(reasons),
            rul_h=rul_h,
            failure_p=failure_p,
            failure_within_h=FAILURE_WITHIN_H,
            offline=node_id in silent,
        )
    return risks


def registry_can_view(*, user: User) -> bool:
    """The model registry holds no node data: every ops-portal role may read it."""
    return user.is_authenticated and (user.is_superuser or user.role in OPS_ROLES)


def failure_model_absence() -> str:
    """Why no failure probability can be given (no failure model is active), said for the
    node page; empty when one is active."""
    versions = TrainedModel.objects.filter(name=FAILURE).defer("artifact")
    if versions.filter(is_active=True).exists():
        return ""
    latest = versions.first()
    if latest is None:
        return (
            "No failure model is active: none has been trained, for want of labelled failures "
            "(import some with manage.py import_history, or resolve tickets as failures; the "
            "nightly training then registers one if it beats its baseline on held-out rows)."
        )
    return (
        f"No failure model is active: the newest, v{latest.version}, was "
        f"{latest.decision or 'not activated'}."
    )


def registry_list(*, prefix: str = "") -> QuerySet[TrainedModel]:
    return TrainedModel.objects.filter(name__startswith=prefix).defer("artifact")

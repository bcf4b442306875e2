"""Who may see which node's maintenance (alerts, tickets, predictions, windows) and the reads
the pages and the API share. The TICKET_MANAGE scope decides: admins everything, vendors their
own nodes, operators the nodes at the sites they operate; other roles nothing."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from apps.core.models import TrainedModel
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
from apps.users.models import User
from apps.users.roles import Action, Role
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


def registry_can_view(*, user: User) -> bool:
    """The model registry holds no node data: every ops-portal role may read it."""
    return user.is_authenticated and (user.is_superuser or user.role in OPS_ROLES)


def registry_list(*, prefix: str = "") -> QuerySet[TrainedModel]:
    return TrainedModel.objects.filter(name__startswith=prefix).defer("artifact")

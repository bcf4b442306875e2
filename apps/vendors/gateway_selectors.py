"""Reads about managed gateways: who may see which, and whether one is online."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404

from apps.users.models import User
from apps.users.roles import Action, Scope, scope_for
from apps.vendors.gateway_config import DEFAULT_POLL_S
from apps.vendors.models import FabricationNode, Gateway, GatewayCredential

# a gateway that has not reported for this many of its poll intervals is shown offline
OFFLINE_AFTER_POLLS = 3


def gateway_list(*, user: User) -> QuerySet[Gateway]:
    """Admins see every gateway; vendors their companies' gateways; operators the gateways at
    the sites they operate (read only); nobody else any."""
    qs = Gateway.objects.select_related("vendor", "site").prefetch_related(
        Prefetch("nodes", queryset=FabricationNode.objects.order_by("name"))
    )
    if scope_for(user, Action.NODE_MANAGE) == Scope.ALL:
        return qs
    mine = Q(pk__in=[])
    if scope_for(user, Action.NODE_MANAGE) == Scope.OWN_NODES:
        mine |= Q(vendor__memberships__user=user)
    if scope_for(user, Action.TICKET_MANAGE) == Scope.OPERATED:
        mine |= Q(site__memberships__user=user)
    return qs.filter(pk__in=Gateway.objects.filter(mine).values("pk"))


def gateway_get_for_user(*, user: User, pk: int) -> Gateway:
    """404, not 403, so ids don't leak."""
    return get_object_or_404(gateway_list(user=user), pk=pk)


def gateway_can_manage(*, user: User, gateway: Gateway) -> bool:
    scope = scope_for(user, Action.NODE_MANAGE)
    if scope == Scope.ALL:
        return True
    return scope == Scope.OWN_NODES and gateway.vendor.memberships.filter(user=user).exists()


def gateway_poll_s(gateway: Gateway) -> float:
    return float(gateway.forwarding.get("poll_s", DEFAULT_POLL_S))


def gateway_is_online(gateway: Gateway, *, now: datetime) -> bool:
    if gateway.last_seen_at is None:
        return False
    window = timedelta(seconds=gateway_poll_s(gateway) * OFFLINE_AFTER_POLLS)
    return now - gateway.last_seen_at <= window


def gateway_credential_list(*, gateway: Gateway) -> QuerySet[GatewayCredential]:
    return gateway.credentials.select_related("created_by")

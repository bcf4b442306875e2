"""Portal pages for managed gateways (their health) and a machine's remote commands. The vendor
portal lists the vendor's gateways, the ops portal those at the operator's sites; both read the
same selector, so each sees what the API would show them."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.core.exceptions import Conflict, error_messages
from apps.users.access import action_required, portal_required
from apps.users.roles import Action
from apps.users.types import AuthenticatedHttpRequest
from apps.vendors.gateway_selectors import (
    gateway_can_manage,
    gateway_get_for_user,
    gateway_is_online,
    gateway_list,
)
from apps.vendors.models import Gateway
from apps.vendors.node_commands import node_command_issue
from apps.vendors.selectors import node_get_for_user


def _rows(gateways: list[Gateway]) -> list[dict[str, object]]:
    now = timezone.now()
    rows = []
    for gateway in gateways:
        nodes = gateway.health.get("nodes", {}) if isinstance(gateway.health, dict) else {}
        rows.append(
            {
                "gateway": gateway,
                "online": gateway_is_online(gateway, now=now),
                "buffered": sum(int(h.get("buffered", 0)) for h in nodes.values()),
                "source_errors": sum(int(h.get("source_errors", 0)) for h in nodes.values()),
            }
        )
    return rows


def _list(request: AuthenticatedHttpRequest, portal: str) -> HttpResponse:
    gateways = list(gateway_list(user=request.user)[:200])
    return render(
        request,
        "vendors/gateway_list.html",
        {"rows": _rows(gateways), "portal": portal},
    )


def _detail(request: AuthenticatedHttpRequest, pk: int, portal: str) -> HttpResponse:
    gateway = gateway_get_for_user(user=request.user, pk=pk)
    health = gateway.health.get("nodes", {}) if isinstance(gateway.health, dict) else {}
    nodes = [{"node": node, "health": health.get(str(node.pk))} for node in gateway.nodes.all()]
    latest = gateway.config_versions.order_by("-version").first()
    unconfigured = latest.document.get("unconfigured", []) if latest is not None else []
    return render(
        request,
        "vendors/gateway_detail.html",
        {
            "gateway": gateway,
            "portal": portal,
            "online": gateway_is_online(gateway, now=timezone.now()),
            "nodes": nodes,
            "latest": latest,
            "unconfigured": unconfigured,
            "can_manage": gateway_can_manage(user=request.user, gateway=gateway),
        },
    )


@portal_required("vendor")
def gateway_list_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _list(request, "vendor")


@portal_required("vendor")
def gateway_detail_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _detail(request, pk, "vendor")


@portal_required("ops")
@action_required(Action.TICKET_MANAGE)  # the site's operators (engineers enter ops, not this)
def ops_gateway_list_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _list(request, "ops")


@portal_required("ops")
@action_required(Action.TICKET_MANAGE)
def ops_gateway_detail_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    return _detail(request, pk, "ops")


@require_POST
@login_required
def node_command_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Send a command from the node's page (vendor portal) or its Live page (whoever may
    command it: the role matrix's node_command, checked by the service); back to that page."""
    node = node_get_for_user(user=request.user, pk=pk)
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = reverse("vendors:node-detail", kwargs={"pk": pk})
    kind = request.POST.get("kind", "")
    setpoint, value = "", None
    if kind == "setpoint":
        setpoint = request.POST.get("setpoint", "")
        try:
            value = float(request.POST.get("value", ""))
        except ValueError:
            messages.error(request, "Give the setpoint's value as a number.")
            return redirect(back)
    try:
        command = node_command_issue(
            node=node, by=request.user, kind=kind, setpoint=setpoint, value=value
        )
    except (PermissionDenied, ValidationError, Conflict) as exc:
        for line in error_messages(exc):
            messages.error(request, line)
    else:
        messages.success(
            request, f"Sent: {command}. It waits for the gateway, which acknowledges it."
        )
    return redirect(back)

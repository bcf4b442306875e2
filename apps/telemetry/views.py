from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render

from apps.core.api import json_error_response
from apps.telemetry.models import SIGNAL_LABELS
from apps.telemetry.selectors import SIGNALS, latest_points, telemetry_nodes
from apps.telemetry.site_power import site_power_for
from apps.users.types import AuthenticatedHttpRequest
from apps.vendors.node_commands import node_can_command, node_command_allowed, node_command_list
from apps.vendors.selectors import node_shows_private_details


@login_required
def node_watch_list_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every node the user may watch, with its newest point."""
    nodes = list(telemetry_nodes(user=request.user).select_related("vendor", "site")[:200])
    latest = {p.node_id: p for p in latest_points(node_ids=[n.pk for n in nodes])}
    rows = [(node, latest.get(node.pk)) for node in nodes]
    sites = site_power_for(user=request.user, nodes=nodes)
    over = {n for s in sites if s.over_cap for n in s.node_ids}
    return render(
        request,
        "telemetry/node_watch_list.html",
        {
            "rows": [(node, point, node.pk in over) for node, point in rows],
            "site_power": [s.as_dict() for s in sites],
            "node_ids": [n.pk for n in nodes],
        },
    )


@login_required
def node_live_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Current values and the last hour, updating live, for anyone who may watch the node."""
    node = get_object_or_404(
        telemetry_nodes(user=request.user).select_related("vendor", "site"), pk=pk
    )
    found = latest_points(node_ids=[node.pk])
    latest = found[0] if found else None
    show_private = node_shows_private_details(user=request.user, node=node)
    # the operator at the machine sends its commands here (the vendor also on the node's page)
    can_command = node_can_command(user=request.user, node=node)
    return render(
        request,
        "telemetry/node_live.html",
        {
            "node": node,
            "latest": latest,
            "signals": [
                (s, SIGNAL_LABELS[s], getattr(latest, s) if latest else None) for s in SIGNALS
            ],
            "status_log": node.status_log.select_related("by")[:5],
            # why the status changed is a private detail of the node (vendors.selectors)
            "show_private": show_private,
            "can_command": can_command,
            "commands": (
                list(node_command_list(node=node)[:20]) if can_command or show_private else []
            ),
            "allowed": node_command_allowed(node=node) if can_command else {},
            "demo_time_scale": settings.DEMO_TIME_SCALE,
            "site_power": [s.as_dict() for s in site_power_for(user=request.user, nodes=[node])],
            "node_ids": [node.pk],
        },
    )


MAX_NODES = 200


@login_required
def site_power_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    """?nodes=1,2: the power-cap flags of the sites those nodes stand at (the Live pages fetch
    it again as readings arrive). Only nodes the caller may watch count; others are 404."""
    raw = request.GET.get("nodes", "")
    try:
        wanted = sorted({int(v) for v in raw.split(",") if v.strip()})
    except ValueError:
        wanted = []
    if not wanted or len(wanted) > MAX_NODES:
        return json_error_response(
            request, 400, "invalid", f"nodes=<id,id,...> names 1 to {MAX_NODES} node ids."
        )
    nodes = list(telemetry_nodes(user=request.user).filter(pk__in=wanted))
    if len(nodes) != len(wanted):  # ids don't leak
        return json_error_response(request, 404, "not_found", "No such node, or not yours.")
    sites = site_power_for(user=request.user, nodes=nodes)
    return JsonResponse({"sites": [s.as_dict() for s in sites]})

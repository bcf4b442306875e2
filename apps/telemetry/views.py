from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render

from apps.telemetry.models import SIGNAL_LABELS
from apps.telemetry.selectors import SIGNALS, latest_points, telemetry_nodes
from apps.users.types import AuthenticatedHttpRequest
from apps.vendors.selectors import node_shows_private_details


@login_required
def node_watch_list_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every node the user may watch, with its newest point."""
    nodes = list(telemetry_nodes(user=request.user).select_related("vendor", "site")[:200])
    latest = {p.node_id: p for p in latest_points(node_ids=[n.pk for n in nodes])}
    rows = [(node, latest.get(node.pk)) for node in nodes]
    return render(request, "telemetry/node_watch_list.html", {"rows": rows})


@login_required
def node_live_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Current values and the last hour, updating live, for anyone who may watch the node."""
    node = get_object_or_404(
        telemetry_nodes(user=request.user).select_related("vendor", "site"), pk=pk
    )
    found = latest_points(node_ids=[node.pk])
    latest = found[0] if found else None
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
            "show_private": node_shows_private_details(user=request.user, node=node),
            "demo_time_scale": settings.DEMO_TIME_SCALE,
        },
    )

"""Fleet health: each node's health score, grouped by site, with open tickets by severity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse

from apps.maintenance.models import (
    NodeHealth,
    Severity,
)
from apps.maintenance.selectors import (
    fleet_health,
    health_of,
)
from apps.maintenance.views._base import (
    NO_SITE,
    SEVERITIES,
    _band,
    _render,
    maintenance_required,
)
from apps.users.types import AuthenticatedHttpRequest
from apps.vendors.models import FabricationNode

# --- 1. Fleet health ---------------------------------------------------------------------------


@dataclass
class Card:
    node: FabricationNode
    health: NodeHealth | None
    band: str
    tickets: list[dict[str, Any]]  # severity, label, count: most severe first

    @property
    def open_tickets(self) -> int:
        return sum(t["count"] for t in self.tickets)


@dataclass
class SiteGroup:
    name: str
    site_id: int | None
    cards: list[Card] = field(default_factory=list)


@login_required
@maintenance_required
def fleet_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    groups: dict[int | None, SiteGroup] = {}
    totals = {"nodes": 0, "online": 0, "offline": 0}
    by_severity = dict.fromkeys(SEVERITIES, 0)
    for node in fleet_health(user=request.user):
        health = health_of(node)
        counts = [
            {
                "severity": severity.value,
                "label": severity.label,
                "count": getattr(node, f"tickets_{severity.value}"),
            }
            for severity in SEVERITIES
        ]
        card = Card(node, health, _band(health.score if health else None), counts)
        site_name = node.site.name if node.site_id and node.site else NO_SITE
        groups.setdefault(node.site_id, SiteGroup(site_name, node.site_id)).cards.append(card)
        totals["nodes"] += 1
        totals["online" if health and health.online else "offline"] += 1
        for count in counts:
            by_severity[Severity(count["severity"])] += count["count"]
    ordered = sorted(groups.values(), key=lambda g: (g.site_id is None, g.name.lower()))
    ticket_totals = [
        {"severity": s.value, "label": s.label, "count": n} for s, n in by_severity.items()
    ]
    return _render(
        request,
        "maintenance/fleet.html",
        {"groups": ordered, "totals": totals, "ticket_totals": ticket_totals},
    )

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from apps.users.roles import (
    Action,
    Scope,
    portal_allows,
    scope_for,
    two_factor_required,
    user_can,
)

PORTAL_LABELS = {"designer": "Designer", "vendor": "Vendor", "ops": "Operations"}


def portal_nav(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_portals": [], "nav_is_admin": False}
    if two_factor_required(user) and not user.is_verified():
        # until the second factor: only the 2FA pages answer, so offer nothing else (no
        # portal links that bounce back here, no live feed the websocket would refuse)
        return {"nav_portals": [], "nav_is_admin": False, "nav_unverified": True}
    portals = [
        {"key": key, "label": label, "url": reverse(f"portal:{key}")}
        for key, label in PORTAL_LABELS.items()
        if portal_allows(user, key)
    ]
    if user_can(user, Action.JOB_VIEW):
        portals.append({"key": "jobs", "label": "Jobs", "url": reverse("jobs:list")})
    if portal_allows(user, "vendor") and user_can(user, Action.NODE_MANAGE):
        portals.append({"key": "fleet", "label": "Fleet", "url": reverse("vendors:node-list")})
    portals.append({"key": "twins", "label": "Twins", "url": reverse("twins:list")})
    portals.append({"key": "market", "label": "Market", "url": reverse("marketplace:browse")})
    if user_can(user, Action.TELEMETRY_VIEW):
        portals.append(
            {"key": "nodes", "label": "Live", "url": reverse("telemetry:node-watch-list")}
        )
    if user_can(user, Action.TICKET_MANAGE):
        portals.append(
            {"key": "maintenance", "label": "Maintenance", "url": reverse("maintenance:fleet")}
        )
    if user_can(user, Action.INVENTORY_MANAGE):
        portals.append(
            {"key": "materials", "label": "Materials", "url": reverse("materials:inventory")}
        )
    if user_can(user, Action.ENERGY_MANAGE):
        portals.append({"key": "energy", "label": "Energy", "url": reverse("energy:dashboard")})
    if user_can(user, Action.KPI_VIEW):
        portals.append({"key": "kpis", "label": "KPIs", "url": reverse("portal:kpis")})
    if user_can(user, Action.SYSTEM_ADMIN) or user.memberships.exists():
        report = reverse("portal:sustainability")
        portals.append({"key": "reports", "label": "Sustainability", "url": report})
    if user_can(user, Action.SYSTEM_ADMIN):
        approvals = reverse("vendors:approvals")
        portals.append({"key": "approvals", "label": "Approvals", "url": approvals})
    unread = user.notifications.filter(read_at__isnull=True).count()
    return {
        "nav_portals": portals,
        "nav_is_admin": user_can(user, Action.SYSTEM_ADMIN),
        "nav_unread": unread,
        "nav_market": {
            "buy": user_can(user, Action.MARKET_BUY),
            "sell": user_can(user, Action.MARKET_SELL),
            "admin": scope_for(user, Action.MARKET_SELL) == Scope.ALL,
        },
        "nav_current": request.path.split("/")[1] if request.path.count("/") > 1 else "",
    }

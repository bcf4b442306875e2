from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from apps.portal.navigation import PORTAL_LABELS, navigation
from apps.users.roles import two_factor_required


def portal_nav(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_groups": []}
    if two_factor_required(user) and not user.is_verified():
        # until the second factor: only the 2FA pages answer, so offer nothing else (no
        # portal links that bounce back here, no live feed the websocket would refuse)
        return {"nav_groups": [], "nav_unverified": True}
    groups = navigation(user=user, path=request.path)
    current = next((g for g in groups if g.current), None)
    return {
        "nav_groups": groups,
        "nav_portal_label": current.label if current else PORTAL_LABELS.get(groups[0].key, ""),
        "nav_unread": user.notifications.filter(read_at__isnull=True).count(),
    }

from __future__ import annotations

import ipaddress

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import redirect, render

from apps.core.models import AuditLog
from apps.core.selectors import audit_log_list, notification_list
from apps.portal.access import action_required, portal_required
from apps.users.models import User
from apps.users.roles import HOME_PORTAL, MATRIX, Action, Role, scope_for, user_can
from apps.users.types import AuthenticatedHttpRequest
from apps.vendors.models import FabricationNode
from apps.vendors.selectors import node_list, pending_node_list, vendor_organizations_for


@login_required
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    """After login, every role lands on its own portal."""
    portal = "ops" if request.user.is_superuser else HOME_PORTAL[Role(request.user.role)]
    return redirect(f"portal:{portal}")


def _capabilities(user: User) -> list[dict[str, str]]:
    rows = []
    for action in MATRIX:
        scope = scope_for(user, action)
        if scope is not None:
            rows.append({"action": action.label, "scope": scope.label})
    return rows


def _portal_context(request: AuthenticatedHttpRequest, portal: str) -> dict[str, object]:
    return {
        "portal": portal,
        "memberships": request.user.memberships.select_related("organization"),
        "capabilities": _capabilities(request.user),
        "notifications": notification_list(user=request.user)[:10],
    }


@portal_required("designer")
def designer_home(request: AuthenticatedHttpRequest) -> HttpResponse:
    from apps.jobs.selectors import job_list

    context = _portal_context(request, "designer")
    jobs = job_list(user=request.user)
    context["recent_jobs"] = jobs.order_by("-created_at", "-id")[:5]
    context["open_jobs"] = jobs.exclude(status__in=["completed", "failed", "cancelled"]).count()
    context["can_create_jobs"] = user_can(request.user, Action.JOB_CREATE)
    return render(request, "portal/designer_home.html", context)


@portal_required("vendor")
def vendor_home(request: AuthenticatedHttpRequest) -> HttpResponse:
    context = _portal_context(request, "vendor")
    counts = dict(
        node_list(user=request.user)
        .filter(vendor__in=vendor_organizations_for(user=request.user))
        .order_by()  # (the default ordering would split the groups per node)
        .values_list("status")
        .annotate(n=Count("id", distinct=True))
    )
    context["fleet_counts"] = [
        (label, counts[value]) for value, label in FabricationNode.Status.choices if value in counts
    ]
    return render(request, "portal/vendor_home.html", context)


@portal_required("ops")
def ops_home(request: AuthenticatedHttpRequest) -> HttpResponse:
    context = _portal_context(request, "ops")
    if scope_for(request.user, Action.SYSTEM_ADMIN):
        per_role = dict(User.objects.values_list("role").annotate(n=Count("id")))
        context["role_counts"] = {role.label: per_role.get(role.value, 0) for role in Role}
        context["recent_audit"] = AuditLog.objects.all()[:8]
        context["pending_nodes"] = pending_node_list().count()
    return render(request, "portal/ops_home.html", context)


@portal_required("ops")
@action_required(Action.SYSTEM_ADMIN)
def audit_log_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    filters = {
        "action": request.GET.get("action", ""),
        "actor": request.GET.get("actor", "").strip(),
        "object_type": request.GET.get("object_type", "").strip(),
        "ip": request.GET.get("ip", "").strip(),
    }
    errors = []
    if filters["ip"]:
        try:
            ipaddress.ip_address(filters["ip"])
        except ValueError:
            errors.append(f"{filters['ip']!r} is not an IP address; the IP filter was ignored.")
            filters["ip"] = ""
    if filters["action"] not in {"", *AuditLog.Action.values}:
        errors.append("Unknown action; the action filter was ignored.")
        filters["action"] = ""
    page = Paginator(audit_log_list(**filters), 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "portal/audit_log.html",
        {
            "page": page,
            "filters": filters,
            "actions": AuditLog.Action.choices,
            "query": query.urlencode(),
            "errors": errors,
            "portal": "ops",
        },
    )


@login_required
def notifications_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    page = Paginator(notification_list(user=request.user), 25).get_page(request.GET.get("page"))
    return render(request, "portal/notifications.html", {"page": page})

from __future__ import annotations

import ipaddress
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.templatetags.static import static

from apps.core.models import AuditLog
from apps.core.selectors import audit_log_list, audit_object_types, notification_list
from apps.energy.selectors import energy_can_manage, metered_energy
from apps.jobs.models import Job
from apps.portal.kpis import PlatformKpis, kpi_can_view, platform_kpis
from apps.portal.navigation import home_portal
from apps.portal.reports import (
    PERIOD_DAYS,
    Period,
    period_parse,
    report_filename,
    report_organization_get,
    report_organizations,
    sustainability_report,
    sustainability_report_csv,
)
from apps.users.access import action_required, portal_required
from apps.users.models import User
from apps.users.roles import MATRIX, Action, Role, Scope, scope_for, user_can
from apps.users.types import AuthenticatedHttpRequest
from apps.vendors.models import FabricationNode
from apps.vendors.selectors import node_list, pending_node_list, vendor_organizations_for


def favicon(request: HttpRequest) -> HttpResponse:
    """Pages without an icon link (Django admin's) make browsers ask for /favicon.ico."""
    return redirect(static("img/favicon.svg"), permanent=True)


@login_required
def home(request: AuthenticatedHttpRequest) -> HttpResponse:
    """After login, every role lands on its own portal."""
    return redirect(f"portal:{home_portal(request.user)}")


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
    context["can_report"] = report_organizations(user=request.user).exists()
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
    context["can_report"] = report_organizations(user=request.user).exists()
    return render(request, "portal/vendor_home.html", context)


@portal_required("engineering")
def engineer_home(request: AuthenticatedHttpRequest) -> HttpResponse:
    """What an engineer does here: their team's jobs, the machines making them right now, how
    the platform performs (KPIs), their twins and the models the agent predicts with. Every
    list comes from the app's own selector, so it reaches only as far as the role matrix."""
    from apps.jobs.selectors import job_list
    from apps.maintenance.selectors import registry_can_view, registry_list
    from apps.telemetry.selectors import latest_points, telemetry_nodes
    from apps.twins.selectors import twin_list

    context = _portal_context(request, "engineering")
    jobs = job_list(user=request.user)
    context["recent_jobs"] = jobs.order_by("-created_at", "-id")[:6]
    per_status = dict(jobs.order_by().values_list("status").annotate(n=Count("id", distinct=True)))
    context["job_counts"] = [
        (value, label, per_status[value])
        for value, label in Job.Status.choices
        if per_status.get(value)
    ]
    context["can_create_jobs"] = user_can(request.user, Action.JOB_CREATE)
    nodes = list(telemetry_nodes(user=request.user).select_related("vendor", "site")[:20])
    latest = {p.node_id: p for p in latest_points(node_ids=[n.pk for n in nodes])}
    context["running_nodes"] = [(node, latest.get(node.pk)) for node in nodes]
    context["can_view_kpis"] = kpi_can_view(user=request.user)
    if context["can_view_kpis"]:
        period = period_parse()
        context["kpis"] = platform_kpis(user=request.user, start=period.start, end=period.end)
        context["kpi_period"] = period
    context["twins"] = twin_list(user=request.user).order_by("-updated_at")[:5]
    if registry_can_view(user=request.user):
        context["active_models"] = registry_list().filter(is_active=True).order_by("name")
    context["can_report"] = report_organizations(user=request.user).exists()
    return render(request, "portal/engineer_home.html", context)


@portal_required("ops")
def ops_home(request: AuthenticatedHttpRequest) -> HttpResponse:
    context = _portal_context(request, "ops")
    context["can_view_kpis"] = kpi_can_view(user=request.user)
    context["can_report"] = report_organizations(user=request.user).exists()
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
            "object_types": audit_object_types(current=filters["object_type"]),
            "query": query.urlencode(),
            "errors": errors,
            "portal": "ops",
        },
    )


@login_required
def notifications_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    page = Paginator(notification_list(user=request.user), 25).get_page(request.GET.get("page"))
    return render(request, "portal/notifications.html", {"page": page})


# --- KPIs and the sustainability report --------------------------------------------------------


def _period(request: AuthenticatedHttpRequest) -> tuple[Period, list[str]]:
    """The period the page asks for; on bad input, the default period and what was wrong."""
    try:
        return (
            period_parse(
                days=request.GET.get("days"),
                start=request.GET.get("start"),
                end=request.GET.get("end"),
            ),
            [],
        )
    except ValidationError as exc:
        labels = {"start": "From", "end": "To", "days": "Period"}
        errors = [
            f"{labels.get(name, name)}: {message} Showing the last 30 days instead."
            for name, messages in exc.message_dict.items()
            for message in messages
        ]
        return period_parse(), errors


def _period_context(request: AuthenticatedHttpRequest, period: Period) -> dict[str, Any]:
    return {
        "period": period,
        "periods": PERIOD_DAYS,
        "picked": {
            "days": str(period.days) if period.days else "",
            "start": request.GET.get("start", "").strip(),
            "end": request.GET.get("end", "").strip(),
        },
    }


def _kpi_charts(kpis: PlatformKpis) -> list[dict[str, Any]]:
    """Chart specs for static/js/maintenance_live.js (templates/maintenance/_chart.html). The
    axes start at zero (utilisation runs 0-100 %): over a period of zeros Chart.js otherwise
    centres the axis on zero, -1 to 1. A chart with nothing but zeros is an empty state that
    says why (`no_data`) instead of a flat line."""
    labels = [d.day.isoformat() for d in kpis.days]
    use = [None if d.utilisation is None else round(100 * d.utilisation, 1) for d in kpis.days]
    # what the nodes drew (metered), as the energy dashboard shows it; parts' kWh are a share
    kwh = [round(d.metered_kwh, 3) for d in kpis.days]
    jobs = [d.jobs_completed for d in kpis.days]
    where = " on the nodes at your sites" if kpis.scope == Scope.OPERATED else ""
    charts: list[dict[str, Any]] = [
        {
            "id": "kpi-jobs",
            "title": "Jobs completed per day",
            "x": "category",
            "labels": labels,
            "axes": {"y": "Jobs completed"},
            "y_min": 0,
            "y_suggested_max": 1,
            "series": [{"label": "Jobs completed", "data": jobs}],
        },
        {
            "id": "kpi-use",
            "title": "Utilisation and energy per day",
            "x": "category",
            "labels": labels,
            "axes": {"y": "Utilisation (%)", "y1": "Energy drawn (kWh)"},
            "y_range": [0, 100],
            "y1_min": 0,
            "series": [
                {"label": "Utilisation (%)", "data": use},
                {"label": "Energy drawn (kWh)", "data": kwh, "axis": "y1"},
            ],
        },
    ]
    if not any(jobs):
        charts[0]["no_data"] = (
            f"No job was completed in this period{where}, so there is no line to draw."
        )
    if not any(use) and not any(kwh):
        in_service = kpis.nodes_in_service
        charts[1]["no_data"] = (
            f"No part ran{where} in this period: utilisation was 0 % on the "
            f"{in_service} node{'s' if in_service != 1 else ''} in service and their power "
            "telemetry shows no energy drawn."
            if in_service
            else f"No node was in service{where} in this period, so there is no utilisation."
        )
    return charts


@portal_required("ops")
@action_required(Action.KPI_VIEW)
def kpis_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    period, errors = _period(request)
    kpis = platform_kpis(user=request.user, start=period.start, end=period.end)
    active = bool(
        kpis.jobs_completed
        or kpis.parts_finished
        or kpis.machine_hours
        or kpis.kwh
        or kpis.metered_kwh
    )
    context = {
        **_period_context(request, period),
        "portal": "ops",
        "errors": errors,
        "kpis": kpis,
        "active": active,
        "charts": _kpi_charts(kpis) if active else [],
        "energy_link": energy_can_manage(user=request.user),
    }
    return render(request, "portal/kpis.html", context)


@login_required
def sustainability_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    organizations = list(report_organizations(user=request.user).order_by("name"))
    context: dict[str, Any] = {"organizations": organizations, "errors": []}
    if not organizations:
        return render(request, "portal/sustainability.html", context)
    raw = request.GET.get("organization", "").strip()
    if raw:
        if not raw.isdigit():
            raise Http404("No such organization.")
        organization = report_organization_get(user=request.user, pk=int(raw))
    else:
        organization = organizations[0]
    period, errors = _period(request)
    report = sustainability_report(organization=organization, start=period.start, end=period.end)
    if request.GET.get("format") == "csv":
        if errors:
            return HttpResponseBadRequest("\n".join(errors), content_type="text/plain")
        response = HttpResponse(
            sustainability_report_csv(report), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{report_filename(report)}"'
        return response
    query = request.GET.copy()
    query["organization"] = str(organization.pk)
    query["format"] = "csv"
    machines = FabricationNode.objects.filter(
        Q(vendor=organization) | Q(site=organization)
    ).exclude(status=FabricationNode.Status.DECOMMISSIONED)
    machine_ids = list(machines.values_list("pk", flat=True))
    context.update(
        _period_context(request, period),
        organization=organization,
        report=report,
        # what its machines drew, idle or running (their power telemetry): parts' kWh above are
        # a share of it, so a site whose machines idle all month does not read as 0 kWh
        machines=len(machine_ids),
        metered=metered_energy(node_ids=machine_ids, start=period.start, end=period.end)
        if machine_ids
        else None,
        errors=errors,
        csv_query=query.urlencode(),
    )
    return render(request, "portal/sustainability.html", context)

"""The ticket queue, a ticket with its evidence charts, and what is done to a ticket (transitions,
assignee, notes, maintenance windows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from apps.core.exceptions import error_messages
from apps.core.forms import form_add_service_error
from apps.core.labels import label_with_unit
from apps.maintenance.forms import (
    AssignForm,
    NoteForm,
    ResolveForm,
    TicketCreateForm,
    WindowForm,
)
from apps.maintenance.models import (
    UNRESOLVED,
    MaintenanceWindow,
    Severity,
    Ticket,
)
from apps.maintenance.selectors import (
    maintained_nodes,
    prediction_list,
    ticket_events,
    ticket_get_for_user,
    ticket_list,
    window_list,
)
from apps.maintenance.services import (
    ticket_assign,
    ticket_assignable,
    ticket_create,
    ticket_note_add,
    ticket_transition,
    window_schedule,
)
from apps.maintenance.services.tickets import TRANSITIONS
from apps.maintenance.views._base import (
    CHART_MAX_POINTS,
    EVIDENCE_AFTER,
    EVIDENCE_BEFORE,
    EVIDENCE_MAX_SPAN,
    MAIN_SIGNALS,
    QUEUE_PAGE_SIZE,
    SERVICE_ERRORS,
    SIGNALS_OF_ISSUE,
    TRANSITION_LABELS,
    TS,
    _evidence_rows,
    _maybe_int,
    _ms,
    _prediction_charts,
    _prediction_gap,
    _render,
    _window_scheduled,
    maintenance_required,
)
from apps.telemetry.selectors import SIGNALS, point_range_downsampled
from apps.users.models import User
from apps.users.types import AuthenticatedHttpRequest
from apps.vendors.models import FabricationNode

# --- 2. The ticket queue ----------------------------------------------------------------------


def _queue_context(
    request: AuthenticatedHttpRequest, form: TicketCreateForm | None = None
) -> dict[str, Any]:
    user = request.user
    nodes = list(maintained_nodes(user=user).order_by("name", "id"))
    sites = sorted(
        {(n.site_id, n.site.name) for n in nodes if n.site_id and n.site}, key=lambda s: s[1]
    )
    get = request.GET
    statuses = [s for s in get.getlist("status") if s in TS.values]
    status_mode = get.get("status", "")
    if status_mode != "all" and not statuses:
        status_mode = "active"
    severity = [s for s in get.getlist("severity") if s in Severity.values]
    issue_type = [s for s in get.getlist("issue_type") if s in Ticket.IssueType.values]
    site_id = _maybe_int(get.get("site"))
    node_id = _maybe_int(get.get("node"))
    assignee = get.get("assignee", "")
    tickets = ticket_list(
        user=user,
        status=statuses or None,
        severity=severity or None,
        issue_type=issue_type or None,
        site_id=site_id,
        node_id=node_id,
        assignee_id=user.pk if assignee == "me" else None,
        active=True if status_mode == "active" and not statuses else None,
    )
    if assignee == "none":
        tickets = tickets.filter(assignee__isnull=True)
    page = Paginator(tickets.order_by("priority", "created_at", "id"), QUEUE_PAGE_SIZE).get_page(
        get.get("page")
    )
    keys = ("status", "severity", "issue_type", "site", "node", "assignee")
    query = urlencode([(k, v) for k in keys for v in get.getlist(k) if v])
    filtered = any(get.get(k) for k in keys if k != "status") or status_mode != "active"
    if form is None:
        form = TicketCreateForm(nodes=_openable(user))
    return {
        "page": page,
        "query": query,
        "filtered": filtered,
        "status_mode": statuses[0] if statuses else status_mode,
        "severity": severity[0] if severity else "",
        "issue_type": issue_type[0] if issue_type else "",
        "site_id": site_id,
        "node_id": node_id,
        "assignee": assignee,
        "statuses": TS.choices,
        "severities": Severity.choices,
        "issue_types": Ticket.IssueType.choices,
        "sites": sites,
        "nodes": nodes,
        "form": form,
        "live": {
            "page": page.number,
            "labels": {
                "status": dict(TS.choices),
                "severity": dict(Severity.choices),
                "issue_type": dict(Ticket.IssueType.choices),
            },
            "nodes": {n.pk: {"name": n.name, "site": n.site_id} for n in nodes},
            "filters": {
                "status": statuses or ([] if status_mode == "all" else list(UNRESOLVED)),
                "severity": severity,
                "issue_type": issue_type,
                "site": site_id,
                "node": node_id,
                "assignee": assignee,
            },
        },
    }


def _openable(user: User) -> Any:
    return (
        maintained_nodes(user=user)
        .exclude(status=FabricationNode.Status.DECOMMISSIONED)
        .order_by("name", "id")
    )


@login_required
@maintenance_required
def ticket_queue_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _render(request, "maintenance/ticket_queue.html", _queue_context(request))


@require_POST
@login_required
@maintenance_required
def ticket_create_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = TicketCreateForm(request.POST, nodes=_openable(request.user))
    if form.is_valid():
        try:
            ticket = ticket_create(by=request.user, **form.cleaned_data)
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(request, f"Ticket #{ticket.pk} opened.")
            return redirect("maintenance:ticket", pk=ticket.pk)
    context = {**_queue_context(request, form), "form_open": True}
    return _render(request, "maintenance/ticket_queue.html", context, status=400)


# --- 3. One ticket ----------------------------------------------------------------------------


def _ticket_signals(ticket: Ticket) -> list[str]:
    evidence = ticket.evidence or {}
    named: list[Any] = []
    if isinstance(evidence.get("signal"), str):
        named = [evidence["signal"]]
    elif isinstance(evidence.get("signals"), list):
        named = evidence["signals"]
    elif isinstance(evidence.get("readings"), dict):
        named = list(evidence["readings"])
    known = [s for s in named if isinstance(s, str) and s in SIGNALS]
    return known or SIGNALS_OF_ISSUE.get(Ticket.IssueType(ticket.issue_type), MAIN_SIGNALS)


def _evidence_span(ticket: Ticket) -> tuple[datetime, datetime]:
    first = ticket.created_at
    since = (ticket.evidence or {}).get("since")
    if isinstance(since, str):
        parsed = parse_datetime(since)
        if parsed is not None and timezone.is_aware(parsed):
            first = min(first, parsed)
    end = max(ticket.last_seen, first) + EVIDENCE_AFTER
    start = max(first - EVIDENCE_BEFORE, end - EVIDENCE_MAX_SPAN)
    return start, end


def _evidence_chart(ticket: Ticket, start: datetime, end: datetime) -> dict[str, Any] | None:
    signals = _ticket_signals(ticket)
    points = point_range_downsampled(
        node_id=ticket.node_id, start=start, end=end, max_points=CHART_MAX_POINTS
    )
    if not points:
        return None
    series: list[dict[str, Any]] = [
        {
            "label": label_with_unit(signal, "signal"),
            "data": [[_ms(p["time"]), p[signal]] for p in points if p.get(signal) is not None],
            "axis": "y" if i == 0 else "y1",
        }
        for i, signal in enumerate(signals)
    ]
    if not any(s["data"] for s in series):
        return None
    threshold = (ticket.evidence or {}).get("threshold")
    if isinstance(threshold, int | float) and len(signals) == 1:
        series.append(
            {
                "label": f"Threshold ({threshold:g})",
                "data": [[_ms(start), threshold], [_ms(end), threshold]],
                "axis": "y",
                "dash": True,
            }
        )
    axes = {"y": label_with_unit(signals[0], "signal")}
    if len(signals) > 1:
        axes["y1"] = ", ".join(label_with_unit(s, "signal") for s in signals[1:])
    return {
        "id": "chart-evidence",
        "x": "time",
        "x_range": [_ms(start), _ms(end)],
        "series": series,
        "axes": axes,
    }


def _labelled(events: Any) -> list[Any]:
    out = list(events)
    for event in out:
        for side in ("from", "to"):
            value = getattr(event, f"{side}_status")
            label = TS(value).label if value in TS.values else value
            setattr(event, f"{side}_label", label)
    return out


def _ticket_context(
    request: AuthenticatedHttpRequest, ticket: Ticket, **forms: Any
) -> dict[str, Any]:
    user = request.user
    allowed = TRANSITIONS[TS(ticket.status)]
    buttons = [
        {
            "to": to,
            "label": "Reopen" if ticket.status == TS.RESOLVED else TRANSITION_LABELS[TS(to)],
        }
        for to in (TS.ACKNOWLEDGED, TS.IN_PROGRESS, TS.CLOSED)
        if to in allowed
    ]
    people = ticket_assignable(ticket=ticket) if ticket.is_active else []
    start, end = _evidence_span(ticket)
    hours = (timezone.now() - start).total_seconds() / 3600
    predictions = list(
        prediction_list(user=user, node_id=ticket.node_id, hours=hours).filter(at__lte=end)
    )
    charts = _prediction_charts(predictions, with_rul=False, x_range=(start, end))
    return {
        "ticket": ticket,
        "node": ticket.node,
        "evidence": _evidence_rows(ticket.evidence or {}),
        "events": _labelled(ticket_events(ticket=ticket)),
        "windows": window_list(user=user, node_id=ticket.node_id).filter(ticket=ticket),
        "buttons": buttons,
        "can_resolve": TS.RESOLVED in allowed,
        "resolve_form": forms.get("resolve_form") or ResolveForm(),
        "assign_form": forms.get("assign_form")
        or AssignForm(people=people, initial={"assignee": ticket.assignee_id}),
        "can_assign": ticket.is_active,
        "note_form": forms.get("note_form") or NoteForm(),
        "window_form": forms.get("window_form")
        or WindowForm(
            initial={
                "kind": MaintenanceWindow.Kind.PREDICTIVE
                if ticket.opened_by_agent
                else MaintenanceWindow.Kind.SCHEDULED,
                "reason": f"Ticket #{ticket.pk}: {ticket.title}"[:300],
            }
        ),
        "evidence_chart": _evidence_chart(ticket, start, end),
        "evidence_from": start,
        "evidence_to": end,
        "prediction_charts": charts,
        "prediction_gap": "" if charts else _prediction_gap(predictions),
    }


@login_required
@maintenance_required
def ticket_detail_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    ticket = ticket_get_for_user(user=request.user, pk=pk)
    return _render(request, "maintenance/ticket_detail.html", _ticket_context(request, ticket))


def _ticket_page(request: AuthenticatedHttpRequest, ticket: Ticket, **forms: Any) -> HttpResponse:
    context = _ticket_context(request, ticket, **forms)
    return _render(request, "maintenance/ticket_detail.html", context, status=400)


@require_POST
@login_required
@maintenance_required
def ticket_transition_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    ticket = ticket_get_for_user(user=request.user, pk=pk)
    to = request.POST.get("to", "")
    if to == TS.RESOLVED:
        form = ResolveForm(request.POST)
        if form.is_valid():
            try:
                ticket_transition(
                    by=request.user,
                    ticket=ticket,
                    to=to,
                    note=form.cleaned_data["note"],
                    was_failure=form.cleaned_data["was_failure"],
                )
            except SERVICE_ERRORS as exc:
                form_add_service_error(form, exc)
            else:
                messages.success(request, "Ticket resolved.")
                return redirect("maintenance:ticket", pk=pk)
        return _ticket_page(request, ticket, resolve_form=form)
    try:
        ticket = ticket_transition(
            by=request.user, ticket=ticket, to=to, note=request.POST.get("note", "")
        )
    except SERVICE_ERRORS as exc:
        messages.error(request, "Not changed: " + "; ".join(error_messages(exc)))
    else:
        messages.success(request, f"Ticket {ticket.get_status_display().lower()}.")
    return redirect("maintenance:ticket", pk=pk)


@require_POST
@login_required
@maintenance_required
def ticket_assign_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    ticket = ticket_get_for_user(user=request.user, pk=pk)
    form = AssignForm(request.POST, people=ticket_assignable(ticket=ticket))
    if form.is_valid():
        assignee = form.cleaned_data["assignee"]
        try:
            ticket_assign(by=request.user, ticket=ticket, assignee=assignee)
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(
                request, f"Assigned to {assignee.email}." if assignee else "Unassigned."
            )
            return redirect("maintenance:ticket", pk=pk)
    return _ticket_page(request, ticket, assign_form=form)


@require_POST
@login_required
@maintenance_required
def ticket_note_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    ticket = ticket_get_for_user(user=request.user, pk=pk)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            ticket_note_add(by=request.user, ticket=ticket, text=form.cleaned_data["text"])
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(request, "Note added.")
            return redirect("maintenance:ticket", pk=pk)
    return _ticket_page(request, ticket, note_form=form)


@require_POST
@login_required
@maintenance_required
def ticket_window_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    ticket = ticket_get_for_user(user=request.user, pk=pk)
    form = WindowForm(request.POST)
    if form.is_valid():
        try:
            window = window_schedule(
                by=request.user, node=ticket.node, ticket=ticket, **form.cleaned_data
            )
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(request, _window_scheduled(window))
            return redirect("maintenance:ticket", pk=pk)
    return _ticket_page(request, ticket, window_form=form)

"""Portal pages of the maintenance agent, for the ops and the vendor portal alike (scoping shows
each user their own nodes): fleet health, the ticket queue, a ticket with its evidence, a node's
maintenance view (the vendor's predictions page), threshold rules and the model registry.
Charts and live updates (/ws/maintenance/) come from static/js/maintenance_live.js."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from apps.core.exceptions import Conflict, error_messages
from apps.core.ml import model_rollback
from apps.core.models import TrainedModel
from apps.maintenance import rules
from apps.maintenance.forms import (
    AssignForm,
    NoteForm,
    ResolveForm,
    RuleForm,
    TicketCreateForm,
    WindowCompleteForm,
    WindowForm,
    form_add_service_error,
)
from apps.maintenance.models import (
    UNRESOLVED,
    MaintenanceWindow,
    NodeHealth,
    Prediction,
    Severity,
    ThresholdRule,
    Ticket,
)
from apps.maintenance.selectors import (
    alert_list,
    fleet_health,
    health_of,
    maintained_node_get,
    maintained_nodes,
    node_rule_candidates,
    prediction_list,
    registry_can_view,
    registry_list,
    ticket_events,
    ticket_get_for_user,
    ticket_list,
    window_get_for_user,
    window_list,
)
from apps.maintenance.services import (
    rule_delete,
    rule_save,
    ticket_assign,
    ticket_assignable,
    ticket_create,
    ticket_note_add,
    ticket_transition,
    window_cancel,
    window_complete,
    window_schedule,
)
from apps.maintenance.services.tickets import TRANSITIONS
from apps.portal.access import action_required
from apps.telemetry.models import SIGNAL_LABELS
from apps.telemetry.selectors import SIGNALS, point_range_downsampled
from apps.users.models import User
from apps.users.roles import Action, Scope, scope_for
from apps.users.types import AuthenticatedHttpRequest
from apps.vendors.models import FabricationNode

SERVICE_ERRORS = (ValidationError, PermissionDenied, Conflict)
TS = Ticket.Status
SEVERITIES = [Severity.CRITICAL, Severity.WARNING, Severity.INFO]
QUEUE_PAGE_SIZE = 25
NO_SITE = "No site"
# The ticket's evidence chart: from 30 minutes before it was first seen to 10 after it was last
# seen, at most two days (the latest) and 600 points (averaged slices beyond that).
EVIDENCE_BEFORE = timedelta(minutes=30)
EVIDENCE_AFTER = timedelta(minutes=10)
EVIDENCE_MAX_SPAN = timedelta(hours=48)
CHART_MAX_POINTS = 600
SIGNALS_OF_ISSUE = {
    Ticket.IssueType.OVERHEATING: ["temperature_c"],
    Ticket.IssueType.VIBRATION: ["vibration_mm_s"],
    Ticket.IssueType.POWER_SPIKE: ["power_kw"],
}
MAIN_SIGNALS = ["temperature_c", "vibration_mm_s", "power_kw"]
TRANSITION_LABELS = {
    TS.ACKNOWLEDGED: "Acknowledge",
    TS.IN_PROGRESS: "Start work",
    TS.CLOSED: "Close",
}
# Registry metrics in the order people look for them; other numeric keys follow.
METRIC_ORDER = ["precision", "recall", "f1", "roc_auc", "rmse_h", "mae_h"]
CHART_METRICS = ["f1", "roc_auc", "mae_h", "rmse_h", "precision", "recall"]
METRIC_LABELS = {
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "roc_auc": "ROC-AUC",
    "rmse_h": "RMSE (h)",
    "mae_h": "MAE (h)",
}
COMPONENT_LABELS = {
    "offline": "Offline",
    "alerts": "Open alerts",
    "tickets": "Open tickets",
    "anomaly": "Anomalous behaviour",
    "failure_risk": "Failure risk",
    "remaining_life": "Remaining life below plan",
}
EVIDENCE_LABELS = {
    "source": "Source",
    "signal": "Signal",
    "signals": "Signals",
    "value": "Reading",
    "threshold": "Threshold",
    "rule": "Rule",
    "since": "Out of limits since",
    "at": "Latest reading at",
    "alert": "Alert",
    "readings": "Readings",
    "scores": "Scores",
    "model": "Model",
    "models": "Models",
    "models_used": "Models",
    "model_version": "Model version",
    "description": "Description",
    "anomaly_score": "Anomaly score",
    "anomaly_threshold": "Anomaly threshold",
    "failure_probability": "Failure probability",
    "rul_hours": "Remaining useful life (h)",
    "vibration_hours_to_limit": "Hours until the vibration limit",
}

maintenance_required = action_required(Action.TICKET_MANAGE)


def _render(
    request: AuthenticatedHttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """render() plus what the maintenance pages' own navigation needs."""
    nav = {
        "show_maintenance": scope_for(request.user, Action.TICKET_MANAGE) is not None,
        "show_registry": registry_can_view(user=request.user),
    }
    return render(request, template, {**nav, **context}, status=status)


# --- Small helpers ----------------------------------------------------------------------------


def _band(score: float | None) -> str:
    if score is None:
        return "unknown"
    if score >= 80:
        return "good"
    return "fair" if score >= 50 else "poor"


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _thin(rows: list[Any], limit: int = CHART_MAX_POINTS) -> list[Any]:
    """Every n-th row so at most `limit` remain (the newest always kept)."""
    if len(rows) <= limit:
        return rows
    step = -(-len(rows) // limit)
    return rows[::-1][::step][::-1]


def _readable(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        when = parse_datetime(value) if len(value) >= 16 and value[4:5] == "-" else None
        if when is None:
            return SIGNAL_LABELS.get(value, value)
        if timezone.is_aware(when):
            when = timezone.localtime(when)
        return f"{when:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, list):
        return ", ".join(_readable(v) for v in value) or "—"
    if isinstance(value, dict):
        return "; ".join(f"{_nested_label(k)}: {_readable(v)}" for k, v in value.items()) or "—"
    return str(value)


def _label(key: str) -> str:
    return EVIDENCE_LABELS.get(key) or SIGNAL_LABELS.get(key) or key.replace("_", " ").capitalize()


def _nested_label(key: str) -> str:
    return EVIDENCE_LABELS.get(key) or SIGNAL_LABELS.get(key) or key


def _evidence_rows(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """The evidence dict as label / text rows; a nested dict (readings, scores, models) becomes
    a list of its own rows."""
    rows = []
    for key, value in evidence.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, dict) and value:
            # nested keys are often names (models, signals): labelled when known, else as they are
            items = [(_nested_label(str(k)), _readable(v)) for k, v in value.items()]
            rows.append({"label": _label(key), "text": "", "items": items})
        else:
            rows.append({"label": _label(key), "text": _readable(value), "items": []})
    return rows


def _maybe_int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None


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


# --- 2. The ticket queue ----------------------------------------------------------------------


def _queue_context(request: AuthenticatedHttpRequest, form: TicketCreateForm | None = None) -> dict:
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
            "label": SIGNAL_LABELS.get(signal, signal),
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
    axes = {"y": SIGNAL_LABELS.get(signals[0], signals[0])}
    if len(signals) > 1:
        axes["y1"] = ", ".join(SIGNAL_LABELS.get(s, s) for s in signals[1:])
    return {
        "id": "chart-evidence",
        "x": "time",
        "x_range": [_ms(start), _ms(end)],
        "series": series,
        "axes": axes,
    }


def _prediction_charts(rows: list[Prediction], *, with_rul: bool) -> list[dict[str, Any]]:
    """Anomaly score against its threshold with the failure probability; RUL on its own."""
    rows = _thin(rows)
    if not rows:
        return []

    def line(attr: str) -> list[list[Any]]:
        return [[_ms(r.at), getattr(r, attr)] for r in rows if getattr(r, attr) is not None]

    charts = [
        {
            "id": "chart-scores",
            "title": "Anomaly score and failure probability",
            "x": "time",
            "series": [
                {"label": "Anomaly score", "data": line("anomaly_score"), "axis": "y"},
                {
                    "label": "Anomaly threshold",
                    "data": line("anomaly_threshold"),
                    "axis": "y",
                    "dash": True,
                },
                {"label": "Failure probability", "data": line("failure_probability"), "axis": "y1"},
            ],
            "axes": {"y": "Anomaly score", "y1": "Failure probability"},
            "y1_range": [0, 1],
        }
    ]
    rul = line("rul_hours")
    if with_rul and rul:
        charts.append(
            {
                "id": "chart-rul",
                "title": "Remaining useful life",
                "x": "time",
                "series": [
                    {"label": "Remaining useful life (h)", "data": rul, "axis": "y"},
                    {
                        "label": "Hours until the vibration limit",
                        "data": line("vibration_hours_to_limit"),
                        "axis": "y",
                        "dash": True,
                    },
                ],
                "axes": {"y": "Hours"},
            }
        )
    return charts


def _labelled(events: Any) -> list[Any]:
    out = list(events)
    for event in out:
        for side in ("from", "to"):
            value = getattr(event, f"{side}_status")
            label = TS(value).label if value in TS.values else value
            setattr(event, f"{side}_label", label)
    return out


def _ticket_context(request: AuthenticatedHttpRequest, ticket: Ticket, **forms: Any) -> dict:
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
        "prediction_charts": _prediction_charts(predictions, with_rul=False),
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


def _window_scheduled(window: MaintenanceWindow) -> str:
    if window.status == MaintenanceWindow.Status.ACTIVE:
        return (
            f"Maintenance window #{window.pk} started: {window.node.name} is in maintenance "
            "and its work moves to other nodes."
        )
    return f"Maintenance window #{window.pk} planned from {window.starts_at:%Y-%m-%d %H:%M} UTC."


# --- 4. One node ------------------------------------------------------------------------------


def _rule_rank(rule: ThresholdRule) -> int:
    return 2 if rule.node_id else 1 if rule.node_kind else 0


def _effective_rules(node: FabricationNode) -> list[dict[str, Any]]:
    """Per signal, the rule in force on this node (node over kind over default, a disabled one
    included: it switches the signal off) and the one it falls back to without an override."""
    by_signal: dict[str, list[ThresholdRule]] = defaultdict(list)
    for rule in node_rule_candidates(node=node):
        by_signal[rule.signal].append(rule)
    out = []
    for signal in sorted(by_signal):
        ranked = sorted(by_signal[signal], key=_rule_rank, reverse=True)
        rule = ranked[0]
        warning, critical = rules.limits(rule, baseline=node.rated_power_kw)
        out.append(
            {
                "signal": signal,
                "label": SIGNAL_LABELS.get(signal, signal),
                "rule": rule,
                "warning": warning,
                "critical": critical,
                "override": rule if rule.node_id else None,
                "fallback": ranked[1] if rule.node_id and len(ranked) > 1 else None,
            }
        )
    return out


def _rule_initial(rule: ThresholdRule | None) -> dict[str, Any]:
    if rule is None:
        return {}
    return {
        "signal": rule.signal,
        "node_kind": rule.node_kind,
        "mode": rule.mode,
        "warning": rule.warning,
        "critical": rule.critical,
        "hysteresis_pct": rule.hysteresis_pct,
        "min_duration_s": rule.min_duration_s,
        "enabled": rule.enabled,
    }


def _node_context(request: AuthenticatedHttpRequest, node: FabricationNode, **forms: Any) -> dict:
    user = request.user
    health = health_of(node)
    effective = _effective_rules(node)
    chosen = request.GET.get("rule", "")
    prefill = next((r["rule"] for r in effective if r["signal"] == chosen), None)
    windows = list(
        window_list(user=user, node_id=node.pk)
        .exclude(status=MaintenanceWindow.Status.CANCELLED)
        .order_by("-starts_at")[:20]
    )
    complete_for = forms.get("complete_for")
    for window in windows:
        if window.status == MaintenanceWindow.Status.ACTIVE:
            bound = forms.get("complete_form") if complete_for == window.pk else None
            window.complete_form = bound or WindowCompleteForm()  # type: ignore[attr-defined]
    predictions = list(prediction_list(user=user, node_id=node.pk, hours=24))
    components = (health.components or {}) if health else {}
    return {
        "node": node,
        "health": health,
        "band": _band(health.score if health else None),
        "components": [(COMPONENT_LABELS.get(k, k), v) for k, v in components.items()],
        "open_alerts": alert_list(user=user, node_id=node.pk, open_only=True),
        "recent_alerts": alert_list(user=user, node_id=node.pk).filter(resolved_at__isnull=False)[
            :20
        ],
        "tickets": ticket_list(user=user, node_id=node.pk).order_by("-created_at")[:25],
        "windows": windows,
        "window_form": forms.get("window_form") or WindowForm(),
        "rules": effective,
        "rule_form": forms.get("rule_form")
        or RuleForm(
            for_node=True,
            signals=[r["signal"] for r in effective],
            initial=_rule_initial(prefill),
        ),
        "prediction_charts": _prediction_charts(predictions, with_rul=True),
        "latest_prediction": predictions[-1] if predictions else None,
    }


@login_required
@maintenance_required
def node_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    node = maintained_node_get(user=request.user, pk=pk)
    return _render(request, "maintenance/node_detail.html", _node_context(request, node))


def _node_page(
    request: AuthenticatedHttpRequest, node: FabricationNode, **forms: Any
) -> HttpResponse:
    context = _node_context(request, node, **forms)
    return _render(request, "maintenance/node_detail.html", context, status=400)


@require_POST
@login_required
@maintenance_required
def node_window_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    node = maintained_node_get(user=request.user, pk=pk)
    form = WindowForm(request.POST)
    if form.is_valid():
        try:
            window = window_schedule(by=request.user, node=node, **form.cleaned_data)
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(request, _window_scheduled(window))
            return redirect("maintenance:node", pk=pk)
    return _node_page(request, node, window_form=form)


@require_POST
@login_required
@maintenance_required
def window_complete_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    window = window_get_for_user(user=request.user, pk=pk)
    form = WindowCompleteForm(request.POST)
    if form.is_valid():
        try:
            window_complete(
                by=request.user, window=window, work_done=form.cleaned_data["work_done"]
            )
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(
                request, f"Window #{window.pk} completed; the node is back in service."
            )
            return redirect("maintenance:node", pk=window.node_id)
    return _node_page(request, window.node, complete_form=form, complete_for=window.pk)


@require_POST
@login_required
@maintenance_required
def window_cancel_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    window = window_get_for_user(user=request.user, pk=pk)
    try:
        window_cancel(by=request.user, window=window)
    except SERVICE_ERRORS as exc:
        messages.error(request, "Not cancelled: " + "; ".join(error_messages(exc)))
    else:
        messages.success(request, f"Window #{window.pk} cancelled.")
    return redirect("maintenance:node", pk=window.node_id)


@require_POST
@login_required
@maintenance_required
def node_rule_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    node = maintained_node_get(user=request.user, pk=pk)
    signals = [r["signal"] for r in _effective_rules(node)]
    form = RuleForm(request.POST, for_node=True, signals=signals)
    if form.is_valid():
        try:
            rule = rule_save(by=request.user, node=node, **form.cleaned_data)
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(request, f"Rule saved for {node.name}: {rule.describe()}.")
            return redirect("maintenance:node", pk=pk)
    return _node_page(request, node, rule_form=form)


@require_POST
@login_required
@maintenance_required
def node_rule_delete_view(request: AuthenticatedHttpRequest, pk: int, rule_id: int) -> HttpResponse:
    node = maintained_node_get(user=request.user, pk=pk)
    rule = get_object_or_404(ThresholdRule.objects.select_related("node"), pk=rule_id, node=node)
    try:
        rule_delete(by=request.user, rule=rule)
    except SERVICE_ERRORS as exc:
        messages.error(request, "Not deleted: " + "; ".join(error_messages(exc)))
    else:
        messages.success(
            request,
            f"{node.name}'s own {SIGNAL_LABELS.get(rule.signal, rule.signal)} rule removed.",
        )
    return redirect("maintenance:node", pk=pk)


# --- 5. Threshold rules -----------------------------------------------------------------------


def _rules_context(request: AuthenticatedHttpRequest, form: RuleForm | None = None) -> dict:
    user = request.user
    can_edit = scope_for(user, Action.TICKET_MANAGE) == Scope.ALL
    shared = list(ThresholdRule.objects.filter(node__isnull=True).select_related("updated_by"))
    node_rules = list(
        ThresholdRule.objects.filter(
            node__in=maintained_nodes(user=user).values("pk")
        ).select_related("node")
    )
    signals = sorted({r.signal for r in shared})
    if can_edit and form is None:
        editing = next((r for r in shared if str(r.pk) == request.GET.get("edit")), None)
        form = RuleForm(signals=signals, initial=_rule_initial(editing))
    for rule in [*shared, *node_rules]:
        rule.signal_label = SIGNAL_LABELS.get(rule.signal, rule.signal)  # type: ignore[attr-defined]
    return {
        "rules": sorted(shared, key=lambda r: (r.signal, _rule_rank(r), r.node_kind)),
        "node_rules": node_rules,
        "can_edit": can_edit,
        "form": form,
    }


@login_required
@maintenance_required
def rules_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _render(request, "maintenance/rules.html", _rules_context(request))
    if scope_for(request.user, Action.TICKET_MANAGE) != Scope.ALL:
        raise PermissionDenied("Only administrators change the default and per-kind rules.")
    signals = ThresholdRule.objects.filter(node__isnull=True).values_list("signal", flat=True)
    form = RuleForm(request.POST, signals=sorted(set(signals)))
    if form.is_valid():
        try:
            rule = rule_save(by=request.user, **form.cleaned_data)
        except SERVICE_ERRORS as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(request, f"Rule saved: {rule}.")
            return redirect("maintenance:rules")
    return _render(request, "maintenance/rules.html", _rules_context(request, form), status=400)


@require_POST
@login_required
@maintenance_required
def rule_delete_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(ThresholdRule, pk=pk, node__isnull=True)
    try:
        rule_delete(by=request.user, rule=rule)
    except SERVICE_ERRORS as exc:
        messages.error(request, "Not deleted: " + "; ".join(error_messages(exc)))
    else:
        messages.success(request, f"The {rule.node_kind} rule of {rule.signal} was removed.")
    return redirect("maintenance:rules")


# --- 6. Model registry ------------------------------------------------------------------------


def _metric_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _readable(value)
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _metric_rows(metrics: dict[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Numeric metrics (known ones first) and the nested ones (baseline, comparison) as text."""
    keys = [k for k in METRIC_ORDER if k in metrics] + sorted(
        k for k in metrics if k not in METRIC_ORDER
    )
    scores, other = [], []
    for key in keys:
        value = metrics[key]
        label = METRIC_LABELS.get(key, key)
        if isinstance(value, dict):
            text = ", ".join(f"{k} {_metric_value(v)}" for k, v in value.items())
            other.append((label.capitalize(), text))
        else:
            scores.append((label, _metric_value(value)))
    return scores, other


def _main_metric(versions: list[TrainedModel]) -> str | None:
    """The metric the registry compared versions on, when the versions report it; else the
    first of the usual headline metrics they report."""

    def reported(key: str) -> bool:
        return any(isinstance((m.metrics or {}).get(key), int | float) for m in versions)

    for model in versions:
        compared = (model.metrics or {}).get("comparison")
        if isinstance(compared, dict) and reported(str(compared.get("metric"))):
            return str(compared["metric"])
    return next((key for key in CHART_METRICS if reported(key)), None)


@login_required
def registry_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    if not registry_can_view(user=request.user):
        raise PermissionDenied("The model registry is for the ops portal's roles.")
    by_name: dict[str, list[TrainedModel]] = defaultdict(list)
    for model in registry_list():
        scores, other = _metric_rows(model.metrics or {})
        model.scores, model.other_metrics = scores, other  # type: ignore[attr-defined]
        by_name[model.name].append(model)
    groups = []
    for index, (name, versions) in enumerate(sorted(by_name.items())):
        metric = _main_metric(versions)
        oldest_first = sorted(versions, key=lambda m: m.version)
        chart = None
        if metric and len(versions) > 1:
            values = [(m.metrics or {}).get(metric) for m in oldest_first]
            chart = {
                "id": f"chart-model-{index}",
                "x": "category",
                "labels": [f"v{m.version}" for m in oldest_first],
                "series": [
                    {
                        "label": METRIC_LABELS.get(metric, metric),
                        "data": [v if isinstance(v, int | float) else None for v in values],
                        "axis": "y",
                    }
                ],
                "axes": {"y": METRIC_LABELS.get(metric, metric)},
            }
        groups.append({"name": name, "versions": versions, "metric": metric, "chart": chart})
    return _render(
        request,
        "maintenance/registry.html",
        {
            "groups": groups,
            "can_rollback": scope_for(request.user, Action.SYSTEM_ADMIN) == Scope.ALL,
        },
    )


@require_POST
@login_required
def registry_rollback_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    if scope_for(request.user, Action.SYSTEM_ADMIN) != Scope.ALL:
        raise PermissionDenied("Only administrators roll models back.")
    name = request.POST.get("name", "")
    version = _maybe_int(request.POST.get("version"))
    if not name or version is None:
        messages.error(request, "Choose a model version to make active.")
        return redirect("maintenance:models")
    try:
        model = model_rollback(name=name, version=version)
    except SERVICE_ERRORS as exc:
        messages.error(request, "Not changed: " + "; ".join(error_messages(exc)))
    else:
        messages.success(request, f"{model.name} v{model.version} is now the active version.")
    return redirect("maintenance:models")

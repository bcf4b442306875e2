"""A node's maintenance page (the vendor's predictions page) with its windows and rule overrides,
and the threshold rules page."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from apps.core.exceptions import error_messages
from apps.core.forms import form_add_service_error
from apps.core.labels import label, label_with_unit
from apps.maintenance import rules
from apps.maintenance.forms import (
    RuleForm,
    WindowCompleteForm,
    WindowForm,
)
from apps.maintenance.models import (
    MaintenanceWindow,
    NodeHealth,
    ThresholdRule,
)
from apps.maintenance.selectors import (
    alert_list,
    failure_model_absence,
    health_of,
    maintained_node_get,
    maintained_nodes,
    node_rule_candidates,
    prediction_list,
    ticket_list,
    window_get_for_user,
    window_list,
)
from apps.maintenance.services import (
    rule_delete,
    rule_save,
    window_cancel,
    window_complete,
    window_schedule,
)
from apps.maintenance.views._base import (
    COMPONENT_LABELS,
    SERVICE_ERRORS,
    _band,
    _prediction_charts,
    _render,
    _window_scheduled,
    maintenance_required,
)
from apps.users.roles import Action, Scope, scope_for
from apps.users.types import AuthenticatedHttpRequest
from apps.vendors.models import FabricationNode

# --- 4. One node ------------------------------------------------------------------------------


def _rule_rank(rule: ThresholdRule) -> int:
    return 2 if rule.node_id else 1 if rule.node_kind else 0


def _effective_rules(node: FabricationNode) -> list[dict[str, Any]]:
    """Per signal and mode, the rule in force on this node (node over kind over default, a
    disabled one included: it switches that mode of the signal off) and the one it falls back to
    without an override."""
    by_key: dict[tuple[str, str], list[ThresholdRule]] = defaultdict(list)
    for rule in node_rule_candidates(node=node):
        by_key[(rule.signal, rule.mode)].append(rule)
    out = []
    for signal, mode in sorted(by_key):
        ranked = sorted(by_key[(signal, mode)], key=_rule_rank, reverse=True)
        rule = ranked[0]
        warning, critical = rules.limits(rule, baseline=node.rated_power_kw)
        out.append(
            {
                "signal": signal,
                "key": f"{signal}:{mode}",
                "label": label_with_unit(signal, "signal"),
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


def _percent(p: float | None) -> str:
    """A probability as people read it: whole percent, with the ends that round away said."""
    if p is None:
        return "—"
    if 0 < p < 0.005:
        return "<1%"
    if 0.995 < p < 1:
        return ">99%"
    return f"{p:.0%}"


def _failure_shown(health: NodeHealth | None) -> dict[str, Any] | None:
    """The failure probability, its interval and what it rests on, as the node page says
    them (the API keeps the raw numbers and keys)."""
    if health is None or health.failure_probability is None:
        return None
    evidence = health.failure_evidence or {}
    lines = []
    if "raw" in evidence:
        line = f"{evidence.get('model', 'failure model')}: {_percent(evidence['raw'])} predicted"
        if evidence.get("smoothing") and "smoothed" in evidence:
            line += f", smoothed to {_percent(evidence['smoothed'])} ({evidence['smoothing']})"
        lines.append(line)
    if evidence.get("interval"):
        lines.append(f"interval: {evidence['interval']}")
    if evidence.get("not_applied"):
        lines.append(f"the failure model was not asked: {evidence['not_applied']}")
    for why in evidence.get("floors") or []:
        lines.append(f"raised to {_percent(evidence.get('floored_at'))}: {why}")
    missing = evidence.get("missing_inputs") or []
    if missing:
        names = ", ".join(label_with_unit(name, "signal") for name in missing)
        lines.append(f"inputs of the model this node does not report (scored as missing): {names}")
    if evidence.get("trained_on"):
        lines.append("trained on " + "; ".join(evidence["trained_on"]))
    return {
        "value": _percent(health.failure_probability),
        "low": None if health.failure_low is None else _percent(health.failure_low),
        "high": None if health.failure_high is None else _percent(health.failure_high),
        "horizon_h": evidence.get("horizon_h", 24),
        "floored": "floored_at" in evidence,
        "lines": lines,
    }


def _node_context(
    request: AuthenticatedHttpRequest, node: FabricationNode, **forms: Any
) -> dict[str, Any]:
    user = request.user
    health = health_of(node)
    effective = _effective_rules(node)
    chosen = request.GET.get("rule", "")
    prefill = next((r["rule"] for r in effective if r["key"] == chosen), None)
    windows = list(
        window_list(user=user, node_id=node.pk)
        .exclude(status=MaintenanceWindow.Status.CANCELLED)
        .order_by("-starts_at")[:20]
    )
    complete_for = forms.get("complete_for")
    completes: dict[int, WindowCompleteForm] = {}  # an active window's "complete" form
    for window in windows:
        if window.status == MaintenanceWindow.Status.ACTIVE:
            bound = forms.get("complete_form") if complete_for == window.pk else None
            completes[window.pk] = bound or WindowCompleteForm()
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
        "windows": [(window, completes.get(window.pk)) for window in windows],
        "window_form": forms.get("window_form") or WindowForm(),
        "rules": effective,
        "rule_form": forms.get("rule_form")
        or RuleForm(
            for_node=True,
            signals=sorted({r["signal"] for r in effective}),
            initial=_rule_initial(prefill),
        ),
        "failure": _failure_shown(health),
        "failure_absent": failure_model_absence(),
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
    signals = sorted({r["signal"] for r in _effective_rules(node)})
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
            f"{node.name}'s own {label_with_unit(rule.signal, 'signal')} rule removed "
            f"({label(rule.mode, 'rule_mode').lower()}).",
        )
    return redirect("maintenance:node", pk=pk)


# --- 5. Threshold rules -----------------------------------------------------------------------


def _rules_context(
    request: AuthenticatedHttpRequest, form: RuleForm | None = None
) -> dict[str, Any]:
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
    return {
        "rules": sorted(shared, key=lambda r: (r.signal, r.mode, _rule_rank(r), r.node_kind)),
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
        messages.success(
            request,
            f"The {label(rule.node_kind, 'node_kind')} rule of "
            f"{label_with_unit(rule.signal, 'signal')} was removed "
            f"({label(rule.mode, 'rule_mode').lower()}).",
        )
    return redirect("maintenance:rules")

"""Threshold rules evaluated on ingest: each node's newest reading per request moves the state
of every ruled signal (apps.maintenance.rules); a level that lasted its minimum duration opens,
escalates or resolves an alert, and a critical alert raises a ticket. Light by design: it runs
in the ingest request after commit, a few small queries per request."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.core.labels import alert_resolved_sentence, alert_sentence
from apps.maintenance import rules
from apps.maintenance.models import (
    SEVERITY_RANK,
    Alert,
    Severity,
    SignalState,
    ThresholdRule,
    Ticket,
)
from apps.maintenance.services.realtime import maintenance_broadcast
from apps.maintenance.services.rule_cache import node_rules_get
from apps.maintenance.services.tickets import ticket_raise
from apps.users.models import User
from apps.users.roles import Action, Scope, scope_for
from apps.vendors.models import FabricationNode

ISSUE_OF_SIGNAL = {
    "temperature_c": Ticket.IssueType.OVERHEATING,
    "vibration_mm_s": Ticket.IssueType.VIBRATION,
    "power_kw": Ticket.IssueType.POWER_SPIKE,
}
PREDICTED_ISSUES = (
    Ticket.IssueType.LOW_RUL,
    Ticket.IssueType.ANOMALY,
    Ticket.IssueType.FAILURE_RISK,
)
ACTION_OF_SIGNAL = {
    "temperature_c": "Check cooling (fans, coolant flow, filters) and the load; let the machine "
    "cool before the next job.",
    "vibration_mm_s": "Inspect spindle bearings, tool holder and balance; check mounting bolts. "
    "Rising vibration usually precedes bearing failure.",
    "power_kw": "Check for a jammed axis, a blunt tool or a failing drive; compare the job's "
    "settings with the material's.",
}


def rules_applicable(*, node: FabricationNode) -> dict[rules.RuleKey, ThresholdRule]:
    """(signal, mode) -> the rule in force on the node."""
    from apps.maintenance.selectors import node_rule_candidates

    candidates = node_rule_candidates(node=node)
    return rules.rules_for(candidates, node_id=node.pk, kind=node.kind)


@transaction.atomic
def alerts_evaluate(*, node_id: int, at: datetime, readings: dict[str, float]) -> list[Alert]:
    """Move each rule in force on a signal of the reading (a signal may have one per mode: a
    level rule and a rise rule on temperature) by one reading; returns the alerts opened,
    escalated, updated or resolved."""
    cached = node_rules_get(node_id=node_id)
    if cached is None:
        return []
    node = cached.node
    applicable = {key: r for key, r in cached.rules.items() if key[0] in readings}
    if not applicable:
        return []
    states = _states_locked(node, set(applicable))
    touched = []
    moved_states = []
    for key, rule in applicable.items():
        signal = key[0]
        value = reading = readings[signal]
        state = states[key]  # (created where missing)
        if state.seen_at is not None and at <= state.seen_at:
            continue  # an older reading than one already evaluated (a late batch)
        warning, critical = rules.limits(rule, baseline=node.rated_power_kw)
        if warning is None and critical is None:
            continue
        if rule.mode in rules.RATE_MODES:
            rate = rules.rate_per_min(
                value=reading,
                at=at,
                since_value=state.rate_from_value,
                since=state.rate_from_at,
                signed=rule.mode == rules.RISE,
            )
            if rate is not None or state.rate_from_at is None:
                state.rate_from_value, state.rate_from_at = reading, at
            if rate is None:  # within a minute of the reference reading: nothing to judge yet
                state.value, state.seen_at = reading, at
                moved_states.append(state)
                continue
            value = rate  # the rule judges, and the alert reports, the change per minute
        moved = rules.step(
            value=value,
            at=at,
            warning=warning,
            critical=critical,
            current=state.level,
            pending=state.pending_level,
            pending_since=state.pending_since,
            band=rule.hysteresis_pct / 100,
            min_duration=timedelta(seconds=rule.min_duration_s),
            below=rule.mode == rules.BELOW,
        )
        since = state.pending_since or at
        state.level, state.pending_level, state.pending_since = (
            moved.level,
            moved.pending,
            moved.pending_since,
        )
        state.value, state.seen_at = reading, at
        alert = state.alert if state.alert is not None and state.alert.is_open else None
        if moved.changed and moved.level == rules.NORMAL and alert is not None:
            touched.append(_resolve(alert, value=value, at=at))
            alert = None
        elif moved.changed and moved.level != rules.NORMAL:
            threshold = critical if moved.level == rules.CRITICAL else warning
            assert threshold is not None
            alert = _raise(node, signal, rule, moved.level, value, threshold, since, at, alert)
            touched.append(alert)
        elif alert is not None:
            alert.count += 1
            alert.value = value
            alert.peak = rules.worse(rule.mode, alert.peak, value)
            alert.last_seen = at
            alert.save(update_fields=["count", "value", "peak", "last_seen", "updated_at"])
            touched.append(alert)
        state.alert = alert
        moved_states.append(state)
    # One statement for all the node's signals: a save each was a round trip per signal.
    SignalState.objects.bulk_update(moved_states, fields=STATE_FIELDS)
    return touched


STATE_FIELDS = [
    "level",
    "pending_level",
    "pending_since",
    "value",
    "seen_at",
    "alert",
    "rate_from_value",
    "rate_from_at",
]


def _states_locked(
    node: FabricationNode, keys: set[rules.RuleKey]
) -> dict[rules.RuleKey, SignalState]:
    """The node's states of `keys` ((signal, mode)), locked for this transaction, created where
    missing. Several ingest processes (and MQTT bridges) may evaluate the same node's first
    readings at once: each inserts the missing rows with ON CONFLICT DO NOTHING, waiting for the
    other's insert, then locks the rows that exist, so neither fails on the unique (node, signal,
    mode)."""

    def locked(wanted: set[rules.RuleKey]) -> dict[rules.RuleKey, SignalState]:
        found = (
            SignalState.objects.select_for_update(of=("self",))
            .select_related("alert")
            .filter(node=node, signal__in={signal for signal, _ in wanted})
        )
        return {(s.signal, s.mode): s for s in found if (s.signal, s.mode) in wanted}

    states = locked(keys)
    missing = keys - set(states)
    if missing:
        SignalState.objects.bulk_create(
            [SignalState(node=node, signal=signal, mode=mode) for signal, mode in sorted(missing)],
            ignore_conflicts=True,
        )
        states.update(locked(missing))
    return states


def _raise(
    node: FabricationNode,
    signal: str,
    rule: ThresholdRule,
    level: str,
    value: float,
    threshold: float,
    since: datetime,
    at: datetime,
    alert: Alert | None,
) -> Alert:
    if alert is None:
        alert = Alert.objects.create(
            node=node,
            signal=signal,
            mode=rule.mode,
            severity=level,
            value=value,
            peak=value,
            threshold=threshold,
            rule=rule,
            rule_text=str(rule)[:200],
            first_seen=since,
            last_seen=at,
        )
        event = "alert.opened"
    else:
        alert.count += 1
        alert.value, alert.last_seen = value, at
        alert.peak = rules.worse(rule.mode, alert.peak, value)
        if SEVERITY_RANK[Severity(level)] > SEVERITY_RANK[Severity(alert.severity)]:
            alert.severity, alert.threshold = level, threshold
        alert.save()
        event = "alert.updated"
    maintenance_broadcast(node, {"type": event, "alert": alert_payload(alert)})
    if level == rules.CRITICAL:
        ticket_raise(
            node=node,
            issue_type=ISSUE_OF_SIGNAL.get(signal, Ticket.IssueType.SIGNAL_LIMIT),
            severity=Severity.CRITICAL,
            title=alert_sentence(
                signal=signal,
                value=value,
                threshold=threshold,
                mode=rule.mode,
                severity=level,
                node_name=node.name,
            ),
            evidence={
                "source": "threshold",
                "alert": alert.pk,
                "signal": signal,
                "value": value,
                "threshold": threshold,
                "mode": rule.mode,
                "reading": rules.breach_words(rule.mode, value=value, threshold=threshold),
                "rule": alert.rule_text,
                "since": since.isoformat(),
                "at": at.isoformat(),
            },
            suggested_action=ACTION_OF_SIGNAL.get(signal, "Inspect the machine."),
            at=at,
            # the models may have foreseen it (a vibration trend, an anomaly): one incident
            fold_into=PREDICTED_ISSUES,
        )
    return alert


def _resolve(alert: Alert, *, value: float, at: datetime) -> Alert:
    alert.value, alert.last_seen, alert.resolved_at = value, at, at
    alert.save(update_fields=["value", "last_seen", "resolved_at", "updated_at"])
    maintenance_broadcast(alert.node, {"type": "alert.resolved", "alert": alert_payload(alert)})
    return alert


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The alert for the maintenance websocket: its codes and figures, and `text`, the sentence
    a toast shows ("Power 14.96 kW above the critical limit of 11.25 kW on Mill-01")."""
    node_name = alert.node.name
    if alert.resolved_at is not None:
        text = alert_resolved_sentence(signal=alert.signal, node_name=node_name)
    else:
        text = alert_sentence(
            signal=alert.signal,
            value=alert.value,
            threshold=alert.threshold,
            mode=alert.mode,
            severity=alert.severity,
            node_name=node_name,
        )
    return {
        "text": text,
        "node_name": node_name,
        "id": alert.pk,
        "node": alert.node_id,
        "signal": alert.signal,
        "mode": alert.mode,
        "severity": alert.severity,
        "value": alert.value,
        "peak": alert.peak,
        "threshold": alert.threshold,
        "rule": alert.rule_text,
        "first_seen": alert.first_seen.isoformat(),
        "last_seen": alert.last_seen.isoformat(),
        "count": alert.count,
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }


# --- Editing rules (ops portal and API) --------------------------------------------------------


def _check_rule_access(*, by: User, node: FabricationNode | None) -> None:
    scope = scope_for(by, Action.TICKET_MANAGE)
    if node is None:
        if scope != Scope.ALL:
            raise PermissionDenied("Only administrators change the platform's default rules.")
        return
    from apps.maintenance.selectors import maintenance_can_view

    if not maintenance_can_view(user=by, node=node):
        raise PermissionDenied("You may not change this node's rules.")


def rule_save(
    *,
    by: User,
    signal: str,
    node_kind: str = "",
    node: FabricationNode | None = None,
    mode: str = ThresholdRule.Mode.ABOVE,
    warning: float | None,
    critical: float | None,
    hysteresis_pct: float = 5.0,
    min_duration_s: float = 10.0,
    enabled: bool = True,
) -> ThresholdRule:
    """Create or replace the rule of `signal` in `mode` at one scope (default, node kind or
    node); the signal's rules of other modes stay."""
    _check_rule_access(by=by, node=node)
    errors: dict[str, list[str]] = {}
    if node is not None and node_kind:
        errors["node_kind"] = ["A rule is for a node kind or for one node, not both."]
    if node_kind and node_kind not in FabricationNode.Kind.values:
        errors["node_kind"] = [f"Unknown node kind {node_kind!r}."]
    if warning is None and critical is None:
        errors["warning"] = ["Give a warning or a critical limit (or both)."]
    if mode == ThresholdRule.Mode.BELOW:
        if warning is not None and critical is not None and critical >= warning:
            errors["critical"] = [
                "Below a limit, the critical limit must be below the warning limit."
            ]
    elif warning is not None and critical is not None and critical <= warning:
        errors["critical"] = ["The critical limit must be above the warning limit."]
    if mode in rules.RATE_MODES:
        what = "a change per minute either way" if mode == rules.RATE else "a rise per minute"
        for name, limit in (("warning", warning), ("critical", critical)):
            if limit is not None and limit <= 0:
                errors.setdefault(name, []).append(
                    f"A {mode} limit is {what}: give a positive number."
                )
    if not 0 <= hysteresis_pct <= 50:
        errors["hysteresis_pct"] = ["Between 0 and 50 %."]
    if not 0 <= min_duration_s <= 3600:
        errors["min_duration_s"] = ["Between 0 and 3600 s."]
    if not signal or len(signal) > 60:
        errors["signal"] = ["Name the signal (at most 60 characters)."]
    if mode not in ThresholdRule.Mode.values:
        errors["mode"] = [f"One of {', '.join(ThresholdRule.Mode.values)}."]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        rule, _ = ThresholdRule.objects.select_for_update().update_or_create(
            signal=signal,
            node_kind=node_kind,
            node=node,
            mode=mode,
            defaults={
                "warning": warning,
                "critical": critical,
                "hysteresis_pct": hysteresis_pct,
                "min_duration_s": min_duration_s,
                "enabled": enabled,
                "updated_by": by,
            },
        )
    return rule


def rule_delete(*, by: User, rule: ThresholdRule) -> None:
    node = rule.node
    _check_rule_access(by=by, node=node)
    if rule.scope == "default":
        raise ValidationError({"rule": ["A default rule can be changed or disabled, not deleted."]})
    rule.delete()

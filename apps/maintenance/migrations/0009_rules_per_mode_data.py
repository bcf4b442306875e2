"""Rules per (signal, mode) instead of per signal: a node may have a level rule and a rate rule
on one signal. Existing data keeps its behaviour: states and alerts take the mode of the rule
that applied to them, and a kind's or node's rule that used to replace a less specific rule of
another mode (a node's `below` rule replacing the default `above` one) now sits beside a
disabled rule of that mode at its scope, so that mode stays off there. Then the default rise
(thermal runaway) rules are installed."""

from django.db import migrations

# The rise rules of apps/maintenance/rules.py DEFAULT_RULES when this migration was written:
# (signal, node kind, mode, warning, critical, min_duration_s).
RISE_RULES = [
    ("temperature_c", "fdm_printer", "rise", 1.5, 2.5, 300.0),
    ("temperature_c", "cnc_mill", "rise", 1.5, 2.0, 600.0),
]


def _old_winner(rules_of_signal, node):
    """The rule that applied to `node` when a signal had one rule: its own, its kind's, the
    default."""
    own = [r for r in rules_of_signal if r.node_id == node.pk]
    kind = [r for r in rules_of_signal if r.node_id is None and r.node_kind == node.kind]
    default = [r for r in rules_of_signal if r.node_id is None and not r.node_kind]
    for chosen in (own, kind, default):
        if chosen:
            return chosen[0]
    return None


def _disabled_copy(rule_model, of, **scope):
    return rule_model.objects.create(
        signal=of.signal,
        mode=of.mode,
        warning=of.warning,
        critical=of.critical,
        hysteresis_pct=of.hysteresis_pct,
        min_duration_s=of.min_duration_s,
        enabled=False,
        **scope,
    )


def forward(apps, schema_editor):
    rule_model = apps.get_model("maintenance", "ThresholdRule")
    state_model = apps.get_model("maintenance", "SignalState")
    alert_model = apps.get_model("maintenance", "Alert")
    node_model = apps.get_model("vendors", "FabricationNode")
    for alert in alert_model.objects.filter(rule__isnull=False).select_related("rule"):
        alert.mode = alert.rule.mode
        alert.save(update_fields=["mode"])
    by_signal = {}
    for rule in rule_model.objects.order_by("pk"):
        by_signal.setdefault(rule.signal, []).append(rule)
    nodes = {}
    for state in state_model.objects.order_by("pk"):
        node = nodes.get(state.node_id) or node_model.objects.get(pk=state.node_id)
        nodes[node.pk] = node
        winner = _old_winner(by_signal.get(state.signal, []), node)
        if winner is not None and winner.mode != state.mode:
            state.mode = winner.mode
            state.save(update_fields=["mode"])
    for signal, of_signal in by_signal.items():
        defaults = [r for r in of_signal if r.node_id is None and not r.node_kind]
        for kind_rule in [r for r in of_signal if r.node_id is None and r.node_kind]:
            for default in defaults:
                if default.mode != kind_rule.mode:
                    _disabled_copy(rule_model, default, node_kind=kind_rule.node_kind)
        current = list(rule_model.objects.filter(signal=signal))
        for node_rule in [r for r in current if r.node_id is not None]:
            node = nodes.get(node_rule.node_id) or node_model.objects.get(pk=node_rule.node_id)
            shadowed = [
                r
                for r in current
                if r.node_id is None and r.node_kind in ("", node.kind) and r.mode != node_rule.mode
            ]
            for mode in sorted({r.mode for r in shadowed}):
                of = next(
                    (r for r in shadowed if r.mode == mode and r.node_kind),
                    next(r for r in shadowed if r.mode == mode),
                )
                _disabled_copy(rule_model, of, node=node_rule.node)
    for signal, kind, mode, warning, critical, min_duration_s in RISE_RULES:
        rule_model.objects.get_or_create(
            signal=signal,
            node_kind=kind,
            node=None,
            mode=mode,
            defaults={
                "warning": warning,
                "critical": critical,
                "min_duration_s": min_duration_s,
            },
        )


def backward(apps, schema_editor):
    """Back to one rule per signal and scope: the rise defaults go, and of several rules at one
    scope the enabled (else the oldest) one stays; one state per node and signal."""
    rule_model = apps.get_model("maintenance", "ThresholdRule")
    state_model = apps.get_model("maintenance", "SignalState")
    for signal, kind, mode, *_ in RISE_RULES:
        rule_model.objects.filter(signal=signal, node_kind=kind, node=None, mode=mode).delete()
    kept = set()
    for rule in rule_model.objects.order_by("-enabled", "pk"):
        scope = (rule.signal, rule.node_kind, rule.node_id)
        if scope in kept:
            rule.delete()
        else:
            kept.add(scope)
    kept = set()
    for state in state_model.objects.order_by("pk"):
        if (state.node_id, state.signal) in kept:
            state.delete()
        else:
            kept.add((state.node_id, state.signal))


class Migration(migrations.Migration):
    dependencies = [("maintenance", "0008_rules_per_mode")]

    operations = [migrations.RunPython(forward, backward)]

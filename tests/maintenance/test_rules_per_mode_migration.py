"""maintenance 0008-0010 move rules, states and alerts from one per signal to one per (signal,
mode) without changing what applies to existing nodes, and install the rise rules; reversed,
one rule per signal and scope again. On the real database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.maintenance import rules
from apps.maintenance.models import ThresholdRule
from apps.users.models import Organization
from apps.vendors.models import FabricationNode

BEFORE = [("maintenance", "0007_failure_probability_interval")]
AFTER = [("maintenance", "0010_rules_per_mode_constraints")]
T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)


def _migrate(targets: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _node(org: Organization, name: str, kind: str) -> FabricationNode:
    return FabricationNode.objects.create(
        vendor=org,
        name=name,
        kind=kind,
        build_x_mm=1,
        build_y_mm=1,
        build_z_mm=1,
        rated_power_kw=0.35,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("latest_migrations_after")
def test_existing_rules_keep_applying_as_before_and_the_rise_rules_arrive() -> None:
    org = Organization.objects.create(name="Vendor", slug="vendor", kind="vendor")
    printer = _node(org, "P", "fdm_printer")
    other = _node(org, "Q", "fdm_printer")
    old = _migrate(BEFORE)
    Rule = old.get_model("maintenance", "ThresholdRule")
    State = old.get_model("maintenance", "SignalState")
    AlertOld = old.get_model("maintenance", "Alert")
    Rule.objects.all().delete()
    Rule.objects.create(signal="temperature_c", mode="above", warning=75, critical=85)
    Rule.objects.create(
        signal="temperature_c", node_kind="fdm_printer", mode="above", warning=245, critical=260
    )
    # P's own rule replaced the printers' level rule with a drop rule (a heater that died)
    own = Rule.objects.create(
        signal="temperature_c", node_id=printer.pk, mode="below", warning=150, critical=100
    )
    State.objects.create(node_id=printer.pk, signal="temperature_c", level="warning")
    State.objects.create(node_id=other.pk, signal="temperature_c")
    alert = AlertOld.objects.create(
        node_id=printer.pk,
        signal="temperature_c",
        severity="warning",
        value=140,
        peak=140,
        threshold=150,
        rule=own,
        rule_text="",
        first_seen=T0,
        last_seen=T0,
    )

    new = _migrate(AFTER)
    State = new.get_model("maintenance", "SignalState")
    Alert = new.get_model("maintenance", "Alert")
    # P: its drop rule, its level rule switched off (as before), the printers' new rise rule
    in_force = rules.rules_for(ThresholdRule.objects.all(), node_id=printer.pk, kind="fdm_printer")
    assert {key: (r.warning, r.critical) for key, r in in_force.items()} == {
        ("temperature_c", "below"): (150, 100),
        ("temperature_c", "rise"): (1.5, 2.5),
    }
    off = ThresholdRule.objects.get(node_id=printer.pk, mode="above")
    assert not off.enabled and (off.warning, off.critical) == (245, 260)
    # Q: unchanged level rule, plus the rise rule
    assert {
        key: r.warning
        for key, r in rules.rules_for(
            ThresholdRule.objects.all(), node_id=other.pk, kind="fdm_printer"
        ).items()
    } == {("temperature_c", "above"): 245, ("temperature_c", "rise"): 1.5}
    mill_rise = ThresholdRule.objects.get(node_kind="cnc_mill", mode="rise")
    assert (mill_rise.critical, mill_rise.min_duration_s) == (2.0, 600.0)
    # the state and the alert took the mode of the rule that applied to them
    assert State.objects.get(node_id=printer.pk).mode == "below"
    assert State.objects.get(node_id=other.pk).mode == "above"
    assert Alert.objects.get(pk=alert.pk).mode == "below"

    back = _migrate(BEFORE)
    Rule = back.get_model("maintenance", "ThresholdRule")
    assert list(Rule.objects.filter(node_id=printer.pk).values_list("mode", "enabled")) == [
        ("below", True)
    ]
    assert not Rule.objects.filter(mode="rise").exists()
    _migrate(AFTER)
    ThresholdRule.objects.all().delete()

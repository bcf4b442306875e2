"""Ingest keeps each node's rules for a few seconds per process: a request evaluates them
without reading the node and its rules again, a rule saved in this process applies at once, and
one changed elsewhere (no signal reaches this process) applies once the entry expires."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.maintenance.models import Alert, SignalState, ThresholdRule
from apps.maintenance.services import rule_save
from apps.maintenance.services.alerts import alerts_evaluate
from tests.fixtures.fleet import Fleet

pytestmark = pytest.mark.django_db


def evaluated(node, t, **readings):
    from datetime import timedelta

    from django.utils import timezone

    with CaptureQueriesContext(connection) as captured:
        alerts_evaluate(
            node_id=node.pk, at=timezone.now() - timedelta(minutes=30 - t / 60), readings=readings
        )
    return [q["sql"] for q in captured.captured_queries]


def test_a_second_request_reads_neither_the_node_nor_its_rules(mill):
    first = evaluated(mill, 0, temperature_c=40.0, vibration_mm_s=1.0, power_kw=3.0)
    second = evaluated(mill, 1, temperature_c=40.0, vibration_mm_s=1.0, power_kw=3.0)
    assert any("maintenance_thresholdrule" in sql for sql in first)
    assert not any("maintenance_thresholdrule" in sql for sql in second)
    assert not any('FROM "vendors_fabricationnode"' in sql for sql in second)
    # the four rules' states (temperature has a level and a rise rule on mills) are written in
    # one statement, not one each
    assert sum(sql.startswith('UPDATE "maintenance_signalstate"') for sql in second) == 1
    states = SignalState.objects.filter(node=mill).order_by("signal", "mode")
    assert [(s.signal, s.mode, s.value) for s in states] == [
        ("power_kw", "baseline_ratio", 3.0),
        ("temperature_c", "above", 40.0),
        ("temperature_c", "rise", 40.0),
        ("vibration_mm_s", "above", 1.0),
    ]


def test_a_rule_saved_in_this_process_applies_at_once(mill, fleet: Fleet):
    evaluated(mill, 0, temperature_c=40.0)  # the default rules are cached now
    rule_save(by=fleet.vendor, signal="temperature_c", node=mill, warning=30, critical=90)
    for t in range(1, 20):
        evaluated(mill, t, temperature_c=40.0)
    assert Alert.objects.get(node=mill).threshold == 30


def test_a_rule_changed_elsewhere_applies_once_the_entry_expires(mill, fleet: Fleet, monkeypatch):
    clock = [1_000.0]
    monkeypatch.setattr("apps.maintenance.services.rule_cache.time.monotonic", lambda: clock[0])
    rule = rule_save(by=fleet.vendor, signal="temperature_c", node=mill, warning=80, critical=90)
    evaluated(mill, 0, temperature_c=40.0)
    # another process lowers the limit: a queryset update sends no signal here
    ThresholdRule.objects.filter(pk=rule.pk).update(warning=30)
    for t in range(1, 20):
        evaluated(mill, t, temperature_c=40.0)
    assert not Alert.objects.exists()  # still the cached limit of 80
    clock[0] += 5.1  # MAINTENANCE_RULES_CACHE_SECONDS
    for t in range(20, 40):
        evaluated(mill, t, temperature_c=40.0)
    assert Alert.objects.get(node=mill).threshold == 30


def test_without_a_cache_every_request_reads_the_rules(mill, settings):
    settings.MAINTENANCE_RULES_CACHE_SECONDS = 0
    evaluated(mill, 0, temperature_c=40.0)
    assert any("maintenance_thresholdrule" in sql for sql in evaluated(mill, 1, temperature_c=40))

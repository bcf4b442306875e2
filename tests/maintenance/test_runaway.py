"""Several rules on one signal: a level rule and a rise (thermal runaway) rule on temperature
both evaluate on ingest; the default rise rules let a simulated machine heat up for work without
a word and catch an overheat long before the level rules would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.maintenance.models import Alert, SignalState, Ticket
from apps.maintenance.services import rule_save
from apps.maintenance.services.remaining_life import critical_alert_evidence
from apps.telemetry.services import telemetry_ingest
from apps.vendors.models import FabricationNode
from edge.simulators.machines import Fault, MachineModel
from tests.fixtures.fleet import Fleet
from tests.fixtures.machines import in_service

pytestmark = pytest.mark.usefixtures("default_rules")


@pytest.fixture
def feed(django_capture_on_commit_callbacks: Any) -> Callable[..., datetime]:
    """Ingest one reading through the real path (its on-commit signal runs the rules); `t` in
    seconds after a start two hours ago, so that an hour of simulated readings stays past."""
    start = timezone.now() - timedelta(hours=2)

    def ingest(node: FabricationNode, t: float, values: dict[str, float]) -> datetime:
        at = start + timedelta(seconds=t)
        with django_capture_on_commit_callbacks(execute=True):
            report = telemetry_ingest(
                points=[{"node": node.pk, "time": at.isoformat(), **values}], node_id=node.pk
            )
        assert report.accepted == 1, report.as_dict()
        return at

    return ingest


def simulate(
    feed: Callable[..., datetime],
    node: FabricationNode,
    model: MachineModel,
    *,
    start: float,
    seconds: float,
    every: float,
) -> datetime:
    """The simulator's readings every `every` seconds, as the gateway would forward them;
    returns the time of the last."""
    t = start
    while t < start + seconds:
        t += every
        sample = model.sample(t)
        at = feed(node, t, {k: v for k, v in sample.items() if k != "material_remaining"})
    return at


def test_a_level_rule_and_a_rise_rule_on_one_signal_both_evaluate(fleet: Fleet, feed):
    # given: a mill with its own rise rule beside the default level rule (75 / 85 C)
    mill = in_service(fleet)
    rule_save(
        by=fleet.vendor,
        signal="temperature_c",
        node=mill,
        mode="rise",
        warning=1.0,
        critical=2.0,
        min_duration_s=120,
    )
    # when: the temperature climbs 3 C a minute from 70 C for 8 minutes (to 94 C)
    for t in range(0, 481, 10):
        feed(mill, t, {"temperature_c": 70 + 3 * t / 60})
    # then: each rule has its state and its critical alert, and the node one overheating ticket
    states = {s.mode: s for s in SignalState.objects.filter(node=mill, signal="temperature_c")}
    assert set(states) == {"above", "rise"}
    assert states["above"].level == states["rise"].level == "critical"
    level = Alert.objects.get(node=mill, mode="above")
    rise = Alert.objects.get(node=mill, mode="rise")
    assert (level.severity, level.threshold) == ("critical", 85.0)
    assert (rise.severity, rise.threshold, rise.value) == ("critical", 2.0, pytest.approx(3.0))
    ticket = Ticket.objects.get(node=mill)
    assert ticket.issue_type == Ticket.IssueType.OVERHEATING and ticket.occurrences >= 2
    # when: the temperature holds at 94 C
    for t in range(490, 800, 10):
        feed(mill, t, {"temperature_c": 94.0})
    # then: the rise is over and its alert resolved, while the level alert stays open
    rise.refresh_from_db()
    level.refresh_from_db()
    assert rise.resolved_at is not None and level.resolved_at is None
    assert Ticket.objects.filter(node=mill).count() == 1


def test_a_printer_heating_up_to_print_and_cooling_down_opens_nothing(fleet: Fleet, feed):
    # given: a simulated printer (hot end 24 -> 210 C with a 20 s time constant), idle
    printer = in_service(fleet, name="Printer-01", kind="fdm_printer", rated_power_kw=0.35)
    model = MachineModel(kind="fdm_printer", rated_power_kw=0.35, seed=3)
    simulate(feed, printer, model, start=0, seconds=120, every=5)
    # when: it prints for 8 minutes, cools for 4, prints 6 more and cools for 6
    model.part_start(120.0, seconds=480)
    simulate(feed, printer, model, start=120, seconds=480, every=5)
    model.part_stop(600.0)
    simulate(feed, printer, model, start=600, seconds=240, every=5)
    model.part_start(840.0, seconds=360)
    simulate(feed, printer, model, start=840, seconds=360, every=5)
    model.part_stop(1200.0)
    simulate(feed, printer, model, start=1200, seconds=360, every=5)
    # then: the rise rule measured the heat-ups (about 177 C in the first minute) and let them
    # pass: they do not last its five minutes
    rise = SignalState.objects.get(node=printer, signal="temperature_c", mode="rise")
    assert rise.level == "normal" and rise.seen_at is not None
    assert not Alert.objects.filter(node=printer).exists()
    assert not Ticket.objects.filter(node=printer).exists()


@pytest.mark.parametrize("rated_kw", [7.5, 30.0])
def test_a_mill_warming_up_under_full_load_opens_nothing(fleet: Fleet, feed, rated_kw):
    # given: a cold simulated mill (the housing warms by 1.8 C per cutting kW, 5-minute time
    # constant); the demo's is 7.5 kW, a 30 kW one warms 47 C
    mill = in_service(fleet, rated_power_kw=rated_kw)
    model = MachineModel(kind="cnc_mill", rated_power_kw=rated_kw, seed=4)
    simulate(feed, mill, model, start=0, seconds=60, every=10)
    # when: it cuts at its continuous rating for 30 minutes
    model.part_start(60.0, load_kw=rated_kw, seconds=1800)
    simulate(feed, mill, model, start=60, seconds=1800, every=10)
    # then: the rise rule (1.5 / 2.0 C a minute for 10 minutes) stays quiet
    rise = SignalState.objects.get(node=mill, signal="temperature_c", mode="rise")
    assert rise.level == "normal" and rise.value > 24 + 1.4 * rated_kw  # it did warm up
    assert not Alert.objects.filter(node=mill).exists()
    assert not Ticket.objects.filter(node=mill).exists()


def test_an_idle_printer_overheating_opens_one_ticket_within_minutes(fleet: Fleet, feed):
    # given: a simulated printer idle at room temperature for 3 minutes
    printer = in_service(fleet, name="Printer-01", kind="fdm_printer", rated_power_kw=0.35)
    model = MachineModel(kind="fdm_printer", rated_power_kw=0.35, seed=5)
    injected = simulate(feed, printer, model, start=0, seconds=180, every=5)
    # when: the overheat fault starts (3 C a minute) and 12 minutes pass
    model.inject(Fault.OVERHEAT, 180.0)
    simulate(feed, printer, model, start=180, seconds=720, every=5)
    # then: the rise rule went critical within 8 minutes (the 245 C level rule would need 74)
    alert = Alert.objects.get(node=printer)
    assert (alert.mode, alert.severity, alert.threshold) == ("rise", "critical", 2.5)
    assert alert.value == pytest.approx(3.0, abs=0.1)
    ticket = Ticket.objects.get(node=printer)
    opened_at = datetime.fromisoformat(ticket.evidence["at"])
    assert timedelta(minutes=5) < opened_at - injected < timedelta(minutes=8)
    assert ticket.issue_type == Ticket.IssueType.OVERHEATING and ticket.severity == "critical"
    assert ticket.title.startswith(
        "Temperature rising faster than the critical limit of 2.5 °C a minute"
    )
    assert ticket.evidence["mode"] == "rise"
    # the evidence the predictions rest on says the rise per minute, not a temperature
    (said,) = critical_alert_evidence(printer)
    assert said.startswith("Temperature rising faster than its critical limit since ")
    assert "°C a minute, limit 2.5 °C a minute; " in said
    assert not SignalState.objects.filter(
        node=printer, signal="temperature_c", mode="above"
    ).exclude(level="normal")

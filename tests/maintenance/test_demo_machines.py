"""The demo's simulated machines through the platform's real maintenance agent: threshold rules
as the demo seeds them, the fleet monitor and the scoring (vibration trend), stepped through 30
minutes of `make run`-like operation (short compressed parts with idle gaps) instead of waiting
for them. Healthy machines must open nothing; one injected fault must open exactly one ticket.
(The AI4I-trained failure model of the demo is checked in the `make run` itself: the test
sample of AI4I is too small to train one that tells a healthy machine from a failing one.)"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.maintenance.models import Alert, NodeHealth, Ticket
from apps.maintenance.services import fleet_monitor
from apps.maintenance.services.scoring import nodes_score
from apps.telemetry.services import telemetry_ingest
from edge.simulators.machines import Fault, MachineModel
from tests.fixtures.fleet import Fleet
from tests.fixtures.machines import in_service

STEP_S = 3.0


class Demo:
    """A mill and a printer as `make run` drives them: the work agent starts a part of 10-50 s
    (a compressed estimate) after 20-120 s idle; the gateway's readings are ingested one by one;
    the fleet monitor runs every minute and the models score every two, as in beat."""

    def __init__(self, nodes, start, capture) -> None:
        self.machines = {
            nodes[0].pk: MachineModel(kind="cnc_mill", rated_power_kw=7.5, seed=1),
            nodes[1].pk: MachineModel(kind="fdm_printer", rated_power_kw=0.35, seed=2),
        }
        self.loads = {nodes[0].pk: 5.25, nodes[1].pk: 0.175}
        self.next_part = dict.fromkeys(self.machines, 30.0)
        self.start = start
        self.capture = capture
        self.rng = random.Random(3)
        self.t = 0.0
        self.parts = 0

    def run(self, seconds: float) -> None:
        end = self.t + seconds
        while self.t < end:
            self.t += STEP_S
            at = self.start + timedelta(seconds=self.t)
            for node_id, machine in self.machines.items():
                self._work(node_id, machine)
                values = machine.sample(self.t)
                with self.capture(execute=True):
                    telemetry_ingest(
                        points=[{"node": node_id, "time": at.isoformat(), **values}],
                        node_id=node_id,
                    )
            if self.t % 60 == 0:
                fleet_monitor(now=at)
            if self.t % 120 == 0:
                nodes_score(now=at)

    def _work(self, node_id: int, machine: MachineModel) -> None:
        if machine.running and self.t >= machine.part_since + machine.part_seconds:
            machine.part_stop(self.t)
            self.next_part[node_id] = self.t + self.rng.uniform(20, 120)
        elif not machine.running and self.t >= self.next_part[node_id]:
            seconds = self.rng.uniform(10, 50)
            machine.part_start(self.t, load_kw=self.loads[node_id], seconds=seconds)
            self.parts += 1


@pytest.mark.integration
@pytest.mark.django_db
def test_healthy_demo_machines_open_nothing_and_one_fault_opens_one_ticket(
    default_rules, fleet: Fleet, django_capture_on_commit_callbacks
):
    # given: the demo's mill and printer in service and the rules the demo seeds
    mill = in_service(fleet, name="Mill-01")
    printer = in_service(
        fleet,
        name="Printer-01",
        kind="fdm_printer",
        processes=["fdm"],
        materials=["PLA"],
        rated_power_kw=0.35,
    )
    demo = Demo(
        [mill, printer],
        timezone.now() - timedelta(minutes=45),
        django_capture_on_commit_callbacks,
    )
    # when: 30 minutes of work
    demo.run(30 * 60)
    # then: many parts ran, both machines were scored healthy, and nothing was raised
    assert demo.parts > 20
    health = NodeHealth.objects.filter(node__in=[mill, printer])
    assert [(h.online, h.score, h.vibration_hours_to_limit) for h in health] == [
        (True, 100.0, None),
        (True, 100.0, None),
    ]
    assert list(Alert.objects.values_list("node__name", "signal", "severity")) == []
    assert list(Ticket.objects.values_list("node__name", "issue_type", "title")) == []
    # when: a worn bearing is injected into the mill and 12 more minutes pass
    demo.machines[mill.pk].inject(Fault.BEARING_WEAR, demo.t)
    demo.run(12 * 60)
    # then: one alert (warning, escalated to critical) and one critical ticket: the vibration
    # trend foresaw the limit (low remaining life) and the threshold crossing joined that
    # ticket; the printer stays quiet
    alerts = Alert.objects.all()
    assert [(a.node_id, a.signal, a.severity) for a in alerts] == [
        (mill.pk, "vibration_mm_s", "critical")
    ]
    tickets = Ticket.objects.all()
    assert [(t.node_id, t.severity) for t in tickets] == [(mill.pk, "critical")]
    ticket = tickets.get()
    findings = {ticket.issue_type, *ticket.evidence.get("findings", {})}
    assert findings == {"low_rul", "vibration"}
    assert "Vibration" in ticket.title and "above the critical limit of 4 mm/s" in ticket.title

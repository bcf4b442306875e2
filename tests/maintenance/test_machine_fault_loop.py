"""The loop from a machine's fault report to the scheduler and maintenance (issue 18, item 2):
the part goes to a healthy node and never back, the faulty node goes to maintenance with its
other work moved off it, and maintenance opens one ticket (a repeat adds to it)."""

from __future__ import annotations

import pytest

from apps.jobs.models import Status
from apps.jobs.services import job_submit, parts_schedule
from apps.maintenance.models import Ticket
from apps.vendors.models import FabricationNode
from tests.fixtures.shop import Shop
from tests.jobs.test_work_api import PLA, device


@pytest.mark.django_db
def test_a_machine_fault_moves_the_work_off_the_node_into_maintenance_with_a_ticket(
    shop: Shop,
    api,
    django_capture_on_commit_callbacks,
):
    # given: two parts queued on the same printer, the other printer idle
    job = job_submit(
        by=shop.designer, title="Frame", parts=[{**PLA, "name": n} for n in ("arm", "leg")]
    )
    parts_schedule()
    arm = job.parts.get(name="arm")
    faulty = arm.assigned_node
    assert faulty is not None
    healthy = shop.printer_b if faulty == shop.printer_a else shop.printer_a
    job.parts.update(assigned_node=faulty)  # both on the faulty printer
    agent = device(api, faulty, shop)
    assert agent.post(f"/api/v1/work/parts/{arm.pk}/start/").status_code == 200

    # when: the printer reports that it broke while making the arm
    with django_capture_on_commit_callbacks(execute=True):
        answer = agent.post(
            f"/api/v1/work/parts/{arm.pk}/fail/",
            {"reason": "nozzle clogged", "machine_fault": True},
        )
    assert answer.status_code == 200, answer.content

    # then: the node is in maintenance, and both parts went to the healthy printer
    faulty.refresh_from_db()
    assert faulty.status == FabricationNode.Status.MAINTENANCE
    for part in job.parts.all():
        assert part.status in (Status.SCHEDULED, Status.ASSIGNED), part.status
        assert part.assigned_node_id == healthy.pk, part.name
    arm.refresh_from_db()
    assert arm.declined_nodes.filter(pk=faulty.pk).exists()  # never offered to it again
    # and maintenance holds one critical ticket with the machine's words
    ticket = Ticket.objects.get(node=faulty)
    assert ticket.issue_type == Ticket.IssueType.MACHINE_FAULT
    assert ticket.severity == "critical" and "nozzle clogged" in ticket.title
    assert ticket.evidence["part"] == arm.pk

    # when: the same machine reports a fault again within the dedup window
    from apps.maintenance.services import machine_fault_ticket

    machine_fault_ticket(node_id=faulty.pk, part_id=arm.pk, reason="nozzle clogged again")
    ticket.refresh_from_db()
    assert ticket.occurrences == 2 and Ticket.objects.filter(node=faulty).count() == 1

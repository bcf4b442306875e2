"""Tickets: deduplication for as long as a ticket is unresolved, the lifecycle, assignment,
priority by severity and age, and who may do what."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F
from django.utils import timezone

from apps.core.exceptions import Conflict
from apps.maintenance.models import Ticket, TicketEvent
from apps.maintenance.selectors import ticket_list
from apps.maintenance.services import (
    ticket_assign,
    ticket_create,
    ticket_note_add,
    ticket_priority,
    ticket_raise,
    ticket_transition,
    tickets_reprioritise,
)
from tests.fixtures.fleet import Fleet
from tests.fixtures.machines import in_service


def raise_vibration(node, *, value=4.2, severity="critical"):
    return ticket_raise(
        node=node,
        issue_type="vibration",
        severity=severity,
        title=f"{node.name}: vibration {value}",
        evidence={"value": value},
        suggested_action="Inspect the bearings.",
    )


def test_the_same_issue_updates_the_open_ticket(mill):
    first, new = raise_vibration(mill, value=4.2)
    again, new_again = raise_vibration(mill, value=4.9)
    assert new and not new_again and again.pk == first.pk
    again.refresh_from_db()
    assert again.occurrences == 2 and again.evidence == {"value": 4.9}
    assert Ticket.objects.count() == 1
    assert again.events.filter(kind=TicketEvent.Kind.OCCURRENCE).count() == 1


def test_a_different_issue_or_node_opens_its_own_ticket(fleet: Fleet, mill):
    other = in_service(fleet, name="Mill-02")
    raise_vibration(mill)
    raise_vibration(other)
    ticket_raise(
        node=mill,
        issue_type="overheating",
        severity="critical",
        title="hot",
        evidence={},
        suggested_action="",
    )
    assert Ticket.objects.count() == 3


def test_a_problem_lasting_three_days_is_one_ticket_with_its_history(mill, fleet: Fleet):
    first, new = raise_vibration(mill)
    assert new
    for _ in range(72):
        # an hour passes: the ticket and its history age by one hour
        Ticket.objects.filter(pk=first.pk).update(created_at=F("created_at") - timedelta(hours=1))
        TicketEvent.objects.filter(ticket=first).update(at=F("at") - timedelta(hours=1))
        ticket, new = raise_vibration(mill, value=4.5)
        assert not new and ticket.pk == first.pk

    first.refresh_from_db()
    assert Ticket.objects.filter(node=mill).count() == 1
    assert timezone.now() - first.created_at >= timedelta(hours=72)
    assert first.occurrences == 73 and first.evidence == {"value": 4.5}
    # the persisting problem is on the ticket's history, once an hour
    assert first.events.filter(kind=TicketEvent.Kind.OCCURRENCE).count() == 72
    # once it is resolved, the same problem coming back is a new ticket
    ticket_transition(by=fleet.vendor, ticket=first, to="resolved", note="bearing replaced")
    second, new = raise_vibration(mill)
    assert new and second.pk != first.pk


def test_a_closed_ticket_is_not_reused(mill, fleet: Fleet):
    first, _ = raise_vibration(mill)
    ticket_transition(by=fleet.vendor, ticket=first, to="resolved", note="bearing replaced")
    ticket_transition(by=fleet.vendor, ticket=first, to="closed")
    second, new = raise_vibration(mill)
    assert new and second.pk != first.pk


def test_a_resolved_ticket_is_not_reused(mill, fleet: Fleet):
    first, _ = raise_vibration(mill)
    ticket_transition(by=fleet.vendor, ticket=first, to="resolved", note="bearing replaced")
    second, new = raise_vibration(mill)
    assert new and second.pk != first.pk


def test_a_warning_escalated_by_a_critical_finding(mill):
    first, _ = raise_vibration(mill, severity="warning")
    assert first.priority == 3
    again, _ = raise_vibration(mill, severity="critical")
    assert (again.severity, again.priority) == ("critical", 1)
    back, _ = raise_vibration(mill, severity="warning")
    assert back.severity == "critical"  # never lowered by a milder finding


def test_priority_from_severity_and_age():
    now = timezone.now()
    assert ticket_priority(severity="critical", opened=now, now=now) == 1
    assert ticket_priority(severity="warning", opened=now, now=now) == 3
    assert ticket_priority(severity="warning", opened=now - timedelta(hours=25), now=now) == 2
    assert ticket_priority(severity="info", opened=now, now=now) == 4
    assert ticket_priority(severity="info", opened=now - timedelta(days=4), now=now) == 3


def test_reprioritise_ages_open_tickets(mill):
    ticket, _ = raise_vibration(mill, severity="warning")
    Ticket.objects.filter(pk=ticket.pk).update(created_at=timezone.now() - timedelta(hours=30))
    assert tickets_reprioritise() == 1
    ticket.refresh_from_db()
    assert ticket.priority == 2


def test_lifecycle_open_to_closed(mill, fleet: Fleet):
    ticket, _ = raise_vibration(mill)
    op = fleet.operator
    ticket = ticket_transition(by=op, ticket=ticket, to="acknowledged")
    assert ticket.acknowledged_at is not None
    ticket = ticket_transition(by=op, ticket=ticket, to="in_progress", note="on my way")
    assert ticket.assignee == op  # who starts the work owns it
    with pytest.raises(ValidationError):
        ticket_transition(by=op, ticket=ticket, to="resolved")  # no note
    ticket = ticket_transition(
        by=op, ticket=ticket, to="resolved", note="spindle bearing replaced", was_failure=True
    )
    assert ticket.resolved_at and ticket.was_failure is True
    with pytest.raises(Conflict):
        ticket_transition(by=op, ticket=ticket, to="acknowledged")
    ticket = ticket_transition(by=op, ticket=ticket, to="closed")
    assert ticket.closed_at is not None
    with pytest.raises(Conflict):
        ticket_transition(by=op, ticket=ticket, to="in_progress")
    kinds = list(ticket.events.values_list("kind", "to_status"))
    assert kinds == [
        ("opened", ""),
        ("status", "acknowledged"),
        ("status", "in_progress"),
        ("status", "resolved"),
        ("status", "closed"),
    ]


def test_a_resolved_ticket_can_be_reopened(mill, fleet: Fleet):
    ticket, _ = raise_vibration(mill)
    ticket = ticket_transition(by=fleet.vendor, ticket=ticket, to="resolved", note="reset")
    ticket = ticket_transition(by=fleet.vendor, ticket=ticket, to="in_progress", note="back")
    assert ticket.resolved_at is None and ticket.status == "in_progress"


def test_assignment_only_to_the_vendors_staff_or_the_sites_operators(mill, fleet: Fleet):
    ticket, _ = raise_vibration(mill)
    ticket = ticket_assign(by=fleet.vendor, ticket=ticket, assignee=fleet.operator)
    assert ticket.assignee == fleet.operator
    for outsider in ("rival", "designer", "engineer"):
        with pytest.raises(ValidationError):
            ticket_assign(by=fleet.vendor, ticket=ticket, assignee=fleet.user(outsider))
    assert ticket_assign(by=fleet.admin, ticket=ticket, assignee=None).assignee is None


@pytest.mark.parametrize(
    ("role", "sees"),
    [
        ("admin", True),
        ("vendor", True),
        ("operator", True),
        ("rival", False),
        ("designer", False),
        ("engineer", False),
        ("viewer", False),
    ],
)
def test_permissions_per_role(mill, fleet: Fleet, role, sees):
    ticket, _ = raise_vibration(mill)
    user = fleet.user(role)
    assert ticket_list(user=user).filter(pk=ticket.pk).exists() is sees
    if sees:
        ticket_note_add(by=user, ticket=ticket, text="looked at it")
        ticket_transition(by=user, ticket=ticket, to="acknowledged")
        ticket_create(by=user, node=mill, issue_type="other", severity="info", title="Oil leak")
        return
    with pytest.raises(PermissionDenied):
        ticket_note_add(by=user, ticket=ticket, text="x")
    with pytest.raises(PermissionDenied):
        ticket_transition(by=user, ticket=ticket, to="acknowledged")
    with pytest.raises(PermissionDenied):
        ticket_assign(by=user, ticket=ticket, assignee=None)
    with pytest.raises(PermissionDenied):
        ticket_create(by=user, node=mill, issue_type="other", severity="info", title="x")


def test_manual_tickets_are_validated(mill, fleet: Fleet):
    with pytest.raises(ValidationError) as bad:
        ticket_create(by=fleet.vendor, node=mill, issue_type="nope", severity="bad", title=" ")
    assert set(bad.value.message_dict) == {"issue_type", "severity", "title"}


def test_model_findings_fold_into_the_nodes_open_agent_ticket(mill, fleet: Fleet):
    vibration, _ = raise_vibration(mill)
    folded, new = ticket_raise(
        node=mill,
        issue_type="low_rul",
        severity="warning",
        title="about 5 h left",
        evidence={"rul_hours": 5},
        suggested_action="",
        fold=True,
    )
    assert not new and folded.pk == vibration.pk
    folded.refresh_from_db()
    assert folded.evidence["value"] == 4.2  # the ticket's own evidence stays
    assert folded.evidence["findings"]["low_rul"] == {"rul_hours": 5}
    assert folded.events.filter(text__startswith="Also found: remaining life").exists()
    # without an open agent ticket, a finding opens its own
    ticket_transition(by=fleet.vendor, ticket=folded, to="resolved", note="bearing replaced")
    _, new = ticket_raise(
        node=mill,
        issue_type="low_rul",
        severity="warning",
        title="x",
        evidence={},
        suggested_action="",
        fold=True,
    )
    assert new


def test_repeated_findings_note_the_history_once_an_hour(mill):
    ticket, _ = raise_vibration(mill)
    for _ in range(5):
        raise_vibration(mill)
    ticket.refresh_from_db()
    assert ticket.occurrences == 6
    assert ticket.events.filter(kind=TicketEvent.Kind.OCCURRENCE).count() == 1

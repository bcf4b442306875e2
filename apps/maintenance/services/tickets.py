"""Maintenance tickets: raised by the agent (deduplicated), or opened by a person; their
lifecycle OPEN -> ACKNOWLEDGED -> IN_PROGRESS -> RESOLVED -> CLOSED, assignment, notes,
priority from severity and age, and who hears about them."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.background import task_enqueue_on_commit
from apps.core.exceptions import Conflict
from apps.core.models import Notification
from apps.core.services import notification_send
from apps.maintenance.models import (
    SEVERITY_RANK,
    UNRESOLVED,
    Severity,
    Ticket,
    TicketEvent,
)
from apps.maintenance.services.realtime import maintenance_broadcast
from apps.notify.models import EventKind
from apps.notify.services import escalation_start, event_raise
from apps.users.models import Membership, User
from apps.users.roles import Role
from apps.vendors.models import FabricationNode

S = Ticket.Status
TRANSITIONS: dict[str, frozenset[str]] = {
    S.OPEN: frozenset({S.ACKNOWLEDGED, S.IN_PROGRESS, S.RESOLVED}),
    S.ACKNOWLEDGED: frozenset({S.IN_PROGRESS, S.RESOLVED}),
    S.IN_PROGRESS: frozenset({S.RESOLVED}),
    S.RESOLVED: frozenset({S.CLOSED, S.IN_PROGRESS}),  # closing, or reopening: it came back
    S.CLOSED: frozenset(),
}


def ticket_priority(*, severity: str, opened: datetime, now: datetime) -> int:
    """1 (most urgent) to 4. Critical is always 1; a warning left for a day and an info left for
    three days move up one step, so nothing waits forever behind newer alarms."""
    age = now - opened
    if severity == Severity.CRITICAL:
        return 1
    if severity == Severity.WARNING:
        return 2 if age >= timedelta(hours=24) else 3
    return 3 if age >= timedelta(hours=72) else 4


def ticket_payload(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.pk,
        "node": ticket.node_id,
        "issue_type": ticket.issue_type,
        "severity": ticket.severity,
        "status": ticket.status,
        "priority": ticket.priority,
        "title": ticket.title,
        "occurrences": ticket.occurrences,
        "last_seen": ticket.last_seen.isoformat(),
        "assignee": ticket.assignee_id,
    }


def ticket_recipients(node: FabricationNode) -> list[User]:
    """The vendor's staff and the operators of the node's site."""
    memberships = Membership.objects.filter(
        organization_id=node.vendor_id, user__role=Role.VENDOR, user__is_active=True
    )
    if node.site_id is not None:
        memberships = memberships | Membership.objects.filter(
            organization_id=node.site_id, user__role=Role.OPERATOR, user__is_active=True
        )
    return list(User.objects.filter(pk__in=memberships.values("user_id")).order_by("pk"))


@transaction.atomic
def ticket_raise(
    *,
    node: FabricationNode,
    issue_type: str,
    severity: str,
    title: str,
    evidence: dict[str, Any],
    suggested_action: str,
    at: datetime | None = None,
    fold: bool = False,
    fold_into: Collection[str] = (),
) -> tuple[Ticket, bool]:
    """The agent's way in: opens a ticket, or, when the same issue on the same node already has
    an unresolved ticket, updates that one (occurrence count, latest evidence, higher
    severity, an event on its history at most hourly) for as long as it is unresolved, however
    old: a problem that persists for days is one ticket, and a new one opens only after it was
    resolved (or closed). With `fold` (the models' findings: anomaly, failure risk, short
    remaining life), any unresolved agent ticket of the node takes the finding instead: one
    worn bearing is one incident, whichever way the agent noticed it. `fold_into` names the
    issue types whose unresolved agent ticket takes it otherwise (a threshold crossing joins
    the prediction that foresaw it). Returns the ticket and whether it is new."""
    at = at or timezone.now()
    now = timezone.now()
    # Serialise raises per node: two findings at once must not open two tickets.
    node = FabricationNode.objects.select_for_update().get(pk=node.pk)
    recent = Ticket.objects.filter(node=node, status__in=UNRESOLVED).order_by("-created_at")
    existing = recent.filter(issue_type=issue_type).first()
    if existing is None and fold:
        existing = recent.filter(opened_by_agent=True).first()
    elif existing is None and fold_into:
        existing = recent.filter(opened_by_agent=True, issue_type__in=list(fold_into)).first()
    if existing is not None:
        existing.occurrences += 1
        existing.last_seen = max(existing.last_seen, at)
        if existing.issue_type == issue_type:
            # the latest evidence, keeping what other findings added to the ticket
            kept = existing.evidence.get("findings")
            existing.evidence = {**evidence, "findings": kept} if kept else evidence
        else:
            findings = dict(existing.evidence.get("findings", {}))
            findings[issue_type] = evidence
            existing.evidence = {**existing.evidence, "findings": findings}
        escalated = SEVERITY_RANK[Severity(severity)] > SEVERITY_RANK[Severity(existing.severity)]
        if escalated:
            existing.severity = severity
            existing.title = title[:200]
        existing.priority = ticket_priority(
            severity=existing.severity, opened=existing.created_at, now=now
        )
        existing.save(
            update_fields=[
                "occurrences",
                "last_seen",
                "evidence",
                "severity",
                "title",
                "priority",
                "updated_at",
            ]
        )
        folded = existing.issue_type != issue_type
        last_noted = (
            existing.events.filter(kind=TicketEvent.Kind.OCCURRENCE)
            .order_by("-at")
            .values_list("at", flat=True)
            .first()
        )
        # The history notes escalations and new kinds of finding at once, repeats once an hour:
        # a finding every two minutes must not bury the people's notes.
        if escalated or folded or last_noted is None or now - last_noted >= timedelta(hours=1):
            label = Ticket.IssueType(issue_type).label.lower()
            TicketEvent.objects.create(
                ticket=existing,
                kind=TicketEvent.Kind.OCCURRENCE,
                text=(f"Also found: {label}" if folded else "Seen again")
                + f" ({existing.occurrences} findings)"
                + (f"; severity raised to {severity}" if escalated else ""),
            )
        maintenance_broadcast(node, {"type": "ticket.updated", "ticket": ticket_payload(existing)})
        if escalated:
            _tell(existing, opened=False)
        return existing, False
    ticket = Ticket.objects.create(
        node=node,
        issue_type=issue_type,
        severity=severity,
        priority=ticket_priority(severity=severity, opened=now, now=now),
        title=title[:200],
        evidence=evidence,
        suggested_action=suggested_action,
        last_seen=at,
        opened_by_agent=True,
    )
    TicketEvent.objects.create(
        ticket=ticket, kind=TicketEvent.Kind.OPENED, text="Opened by the maintenance agent."
    )
    maintenance_broadcast(node, {"type": "ticket.opened", "ticket": ticket_payload(ticket)})
    _tell(ticket, opened=True)
    return ticket, True


def _tell(ticket: Ticket, *, opened: bool) -> None:
    """In-app notice to the vendor's staff and the site's operators; e-mail when critical."""
    from apps.maintenance.tasks import ticket_email_task

    level = {
        Severity.CRITICAL: Notification.Level.CRITICAL,
        Severity.WARNING: Notification.Level.WARNING,
    }.get(Severity(ticket.severity), Notification.Level.INFO)
    verb = "New ticket" if opened else "Ticket escalated"
    recipients = ticket_recipients(ticket.node)
    _raise(
        ticket,
        kind=EventKind.TICKET_OPENED if opened else EventKind.TICKET_ESCALATED,
        title=f"{verb}: {ticket.title}",
        body=ticket.suggested_action,
        recipients=recipients,
    )
    for user in recipients:
        notification_send(
            user=user,
            title=f"{verb}: {ticket.title}",
            body=ticket.suggested_action,
            level=level,
            link=f"/maintenance/tickets/{ticket.pk}/",
        )
    if ticket.severity == Severity.CRITICAL:
        ticket_id = ticket.pk
        task_enqueue_on_commit(ticket_email_task, ticket_id)


def _raise(
    ticket: Ticket, *, kind: str, title: str, body: str, recipients: list[User] | None = None
) -> None:
    """The ticket as an event for the notification channels of the vendor, the site and the
    people who hear of it (apps/notify); one subject per node, so a flapping machine's tickets
    group into one digest and reach each channel in order."""
    node = ticket.node
    event = event_raise(
        kind=kind,
        severity=ticket.severity,
        title=title,
        body=body,
        link=f"/maintenance/tickets/{ticket.pk}/",
        subject=f"node:{node.pk}",
        data={"ticket": ticket_payload(ticket), "node_name": node.name},
        organizations=[node.vendor_id, node.site_id],
        users=ticket_recipients(node) if recipients is None else recipients,
    )
    if ticket.severity == Severity.CRITICAL and kind != EventKind.TICKET_RESOLVED:
        # nobody acknowledging it in time calls the site's on-call rota, then the admins
        escalation_start(
            event=event, key=f"ticket:{ticket.pk}", organizations=[node.site_id, node.vendor_id]
        )


def _check_manage(*, by: User, ticket: Ticket) -> None:
    from apps.maintenance.selectors import maintenance_can_view

    if not maintenance_can_view(user=by, node=ticket.node):
        raise PermissionDenied("You may not manage this node's tickets.")


@transaction.atomic
def ticket_create(
    *,
    by: User,
    node: FabricationNode,
    issue_type: str,
    severity: str,
    title: str,
    description: str = "",
) -> Ticket:
    """A ticket opened by a person (never deduplicated: they meant it)."""
    from apps.maintenance.selectors import maintenance_can_view

    if not maintenance_can_view(user=by, node=node):
        raise PermissionDenied("You may not open tickets for this node.")
    errors = {}
    if issue_type not in Ticket.IssueType.values:
        errors["issue_type"] = [f"One of {', '.join(Ticket.IssueType.values)}."]
    if severity not in Severity.values:
        errors["severity"] = [f"One of {', '.join(Severity.values)}."]
    if not title.strip():
        errors["title"] = ["Give the ticket a title."]
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    ticket = Ticket.objects.create(
        node=node,
        issue_type=issue_type,
        severity=severity,
        priority=ticket_priority(severity=severity, opened=now, now=now),
        title=title.strip()[:200],
        evidence={"source": "manual", "description": description},
        suggested_action="",
        last_seen=now,
        opened_by_agent=False,
        created_by=by,
    )
    TicketEvent.objects.create(
        ticket=ticket, kind=TicketEvent.Kind.OPENED, author=by, text=description.strip()
    )
    maintenance_broadcast(node, {"type": "ticket.opened", "ticket": ticket_payload(ticket)})
    if severity == Severity.CRITICAL:
        _tell(ticket, opened=True)
    return ticket


@transaction.atomic
def ticket_transition(
    *,
    by: User,
    ticket: Ticket,
    to: str,
    note: str = "",
    was_failure: bool | None = None,
) -> Ticket:
    ticket = Ticket.objects.select_for_update().select_related("node").get(pk=ticket.pk)
    _check_manage(by=by, ticket=ticket)
    if to not in S.values:
        raise ValidationError({"status": [f"One of {', '.join(S.values)}."]})
    if to not in TRANSITIONS[ticket.status]:
        raise Conflict(
            f"A ticket cannot go from {ticket.get_status_display().lower()} to "
            f"{S(to).label.lower()}.",
            details={"from": ticket.status, "to": to},
        )
    if to == S.RESOLVED and not note.strip():
        raise ValidationError({"note": ["Say what was done to resolve it."]})
    now = timezone.now()
    previous = ticket.status
    ticket.status = to
    fields = ["status", "updated_at"]
    if to == S.ACKNOWLEDGED or to == S.IN_PROGRESS and ticket.acknowledged_at is None:
        ticket.acknowledged_at = now
        fields.append("acknowledged_at")
    if to == S.RESOLVED:
        ticket.resolved_at, ticket.resolution = now, note.strip()
        ticket.was_failure = was_failure
        fields += ["resolved_at", "resolution", "was_failure"]
    elif to == S.CLOSED:
        ticket.closed_at = now
        fields.append("closed_at")
    elif previous == S.RESOLVED:  # reopened
        ticket.resolved_at = None
        fields.append("resolved_at")
    if to == S.IN_PROGRESS and ticket.assignee_id is None and _eligible(by, ticket.node):
        ticket.assignee = by  # who starts the work owns it, unless someone was assigned
        fields.append("assignee")
    ticket.save(update_fields=fields)
    TicketEvent.objects.create(
        ticket=ticket,
        kind=TicketEvent.Kind.STATUS,
        author=by,
        text=note.strip(),
        from_status=previous,
        to_status=to,
    )
    maintenance_broadcast(ticket.node, {"type": "ticket.updated", "ticket": ticket_payload(ticket)})
    if to == S.RESOLVED:
        _raise(
            ticket,
            kind=EventKind.TICKET_RESOLVED,
            title=f"Ticket resolved: {ticket.title}",
            body=ticket.resolution,
        )
    return ticket


def _eligible(user: User, node: FabricationNode) -> bool:
    """Who may be assigned: an admin, the vendor's staff, or an operator of the node's site."""
    if not user.is_active:
        return False
    if user.is_superuser or user.role == Role.ADMIN:
        return True
    if user.role == Role.VENDOR:
        return Membership.objects.filter(user=user, organization_id=node.vendor_id).exists()
    if user.role == Role.OPERATOR and node.site_id is not None:
        return Membership.objects.filter(user=user, organization_id=node.site_id).exists()
    return False


def ticket_assignable(*, ticket: Ticket) -> list[User]:
    node = ticket.node
    members = Membership.objects.filter(organization_id=node.vendor_id, user__role=Role.VENDOR)
    if node.site_id is not None:
        members = members | Membership.objects.filter(
            organization_id=node.site_id, user__role=Role.OPERATOR
        )
    return list(
        User.objects.filter(pk__in=members.values("user_id"), is_active=True).order_by("email")
    )


@transaction.atomic
def ticket_assign(*, by: User, ticket: Ticket, assignee: User | None) -> Ticket:
    ticket = Ticket.objects.select_for_update().select_related("node").get(pk=ticket.pk)
    _check_manage(by=by, ticket=ticket)
    if ticket.status not in UNRESOLVED:
        raise Conflict("Only an unresolved ticket can be assigned.")
    if assignee is not None and not _eligible(assignee, ticket.node):
        raise ValidationError(
            {"assignee": ["Assign an operator of the node's site or the vendor's staff."]}
        )
    ticket.assignee = assignee
    ticket.save(update_fields=["assignee", "updated_at"])
    TicketEvent.objects.create(
        ticket=ticket,
        kind=TicketEvent.Kind.ASSIGNED,
        author=by,
        text=f"Assigned to {assignee.email}" if assignee else "Unassigned",
    )
    if assignee is not None and assignee != by:
        notification_send(
            user=assignee,
            title=f"Assigned to you: {ticket.title}",
            level=Notification.Level.INFO,
            link=f"/maintenance/tickets/{ticket.pk}/",
        )
    maintenance_broadcast(ticket.node, {"type": "ticket.updated", "ticket": ticket_payload(ticket)})
    return ticket


@transaction.atomic
def ticket_note_add(*, by: User, ticket: Ticket, text: str) -> TicketEvent:
    _check_manage(by=by, ticket=ticket)
    if not text.strip():
        raise ValidationError({"text": ["Write the note."]})
    return TicketEvent.objects.create(
        ticket=ticket, kind=TicketEvent.Kind.NOTE, author=by, text=text.strip()[:5000]
    )


def tickets_reprioritise(*, now: datetime | None = None) -> int:
    """Recomputes the priority of unresolved tickets (age moves them up); returns how many
    changed."""
    now = now or timezone.now()
    changed = 0
    for ticket in Ticket.objects.filter(status__in=UNRESOLVED).only(
        "pk", "severity", "created_at", "priority"
    ):
        priority = ticket_priority(severity=ticket.severity, opened=ticket.created_at, now=now)
        if priority != ticket.priority:
            Ticket.objects.filter(pk=ticket.pk).update(priority=priority)
            changed += 1
    return changed


def machine_fault_ticket(*, node_id: int, part_id: int, reason: str) -> Ticket:
    """A node reported that the machine broke while making a part (jobs has already moved the
    part elsewhere and the node to maintenance): a critical ticket, or one more occurrence on
    the node's open machine-fault ticket."""
    node = FabricationNode.objects.get(pk=node_id)
    ticket, _ = ticket_raise(
        node=node,
        issue_type=Ticket.IssueType.MACHINE_FAULT,
        severity=Severity.CRITICAL,
        title=f"{node.name}: machine fault reported: {reason}"[:200],
        evidence={"source": "machine", "part": part_id, "reason": reason},
        suggested_action=(
            "The node is in maintenance and its work has moved to other nodes. Fix the machine, "
            "then return the node to service (idle) or plan a maintenance window."
        ),
    )
    return ticket

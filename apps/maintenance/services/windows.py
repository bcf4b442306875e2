"""Maintenance windows: planning one sends the node's queued work that would overlap it back to
the scheduler, which plans around planned windows; starting one takes the node out of service
(MAINTENANCE), so the jobs scheduler's self-healing moves its running work elsewhere; completing one
records what was done, resolves its ticket and returns the node to IDLE."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.background import task_enqueue_on_commit
from apps.core.exceptions import Conflict
from apps.maintenance.models import UNRESOLVED, MaintenanceWindow, Ticket
from apps.maintenance.services.realtime import maintenance_broadcast
from apps.users.models import User
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_transition

W = MaintenanceWindow.Status
N = FabricationNode.Status
# The platform's way from each working status to MAINTENANCE along the node lifecycle.
PATH_TO_MAINTENANCE = {
    N.IDLE: [N.MAINTENANCE],
    N.ASSIGNED: [N.IDLE, N.MAINTENANCE],
    N.EXECUTING: [N.ASSIGNED, N.IDLE, N.MAINTENANCE],
    N.MAINTENANCE: [],
}


def _check(*, by: User, node: FabricationNode) -> None:
    from apps.maintenance.selectors import maintenance_can_view

    if not maintenance_can_view(user=by, node=node):
        raise PermissionDenied("You may not plan maintenance for this node.")


@transaction.atomic
def window_schedule(
    *,
    by: User | None,
    node: FabricationNode,
    kind: str,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    ticket: Ticket | None = None,
) -> MaintenanceWindow:
    """Plan a window (by=None: the agent). One starting now or in the past starts at once."""
    if by is not None:
        _check(by=by, node=node)
    now = timezone.now()
    errors: dict[str, list[str]] = {}
    if kind not in MaintenanceWindow.Kind.values:
        errors["kind"] = [f"One of {', '.join(MaintenanceWindow.Kind.values)}."]
    if ends_at <= starts_at:
        errors["ends_at"] = ["The window must end after it starts."]
    elif ends_at <= now:
        errors["ends_at"] = ["The window must end in the future."]
    if not reason.strip():
        errors["reason"] = ["Say why the node needs maintenance."]
    if ticket is not None and ticket.node_id != node.pk:
        errors["ticket"] = ["The ticket is for another node."]
    if node.status in (N.REGISTERED, N.CONFIGURED, N.DECOMMISSIONED) or not node.is_approved:
        errors["node"] = [f"{node.name} is not in service; there is nothing to take out of it."]
    if errors:
        raise ValidationError(errors)
    clash = (
        MaintenanceWindow.objects.select_for_update()
        .filter(
            node=node,
            status__in=(W.PLANNED, W.ACTIVE),
            starts_at__lt=ends_at,
            ends_at__gt=starts_at,
        )
        .first()
    )
    if clash is not None:
        raise Conflict(
            f"{node.name} already has a {clash.get_kind_display().lower()} window from "
            f"{clash.starts_at:%Y-%m-%d %H:%M} to {clash.ends_at:%Y-%m-%d %H:%M}.",
            details={"window": clash.pk},
        )
    window = MaintenanceWindow.objects.create(
        node=node,
        kind=kind,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason.strip()[:300],
        ticket=ticket,
        created_by=by,
    )
    maintenance_broadcast(node, {"type": "window.planned", "window": window.pk, "node": node.pk})
    if starts_at <= now:
        window = window_start(window=window)
    else:
        _clear_ahead(window)
    return window


def _clear_ahead(window: MaintenanceWindow) -> None:
    """Parts queued on the node that would still run when the window starts go back to the
    scheduler now, which plans around the window (apps/maintenance/apps.py `_planned_windows`)."""
    from apps.jobs.models import Part
    from apps.jobs.services import part_reschedule
    from apps.jobs.tasks import parts_schedule_task

    moved = 0
    queued = Part.objects.filter(
        Q(planned_finish__isnull=True) | Q(planned_finish__gt=window.starts_at),
        assigned_node_id=window.node_id,
        status__in=[Part.Status.SCHEDULED, Part.Status.ASSIGNED],
    )
    for part in queued:
        part_reschedule(
            part=part, reason=f"planned maintenance from {window.starts_at:%Y-%m-%d %H:%M}"
        )
        moved += 1
    if moved:
        task_enqueue_on_commit(parts_schedule_task)


@transaction.atomic
def window_start(*, window: MaintenanceWindow) -> MaintenanceWindow:
    """Takes the node to MAINTENANCE (its running and queued parts are moved by the jobs
    scheduler's self-healing right after)."""
    window = MaintenanceWindow.objects.select_for_update().select_related("node").get(pk=window.pk)
    if window.status != W.PLANNED:
        return window
    node = FabricationNode.objects.select_for_update().get(pk=window.node_id)
    path = PATH_TO_MAINTENANCE.get(FabricationNode.Status(node.status))
    if path is None:
        raise Conflict(
            f"{node.name} is {node.get_status_display().lower()}; it cannot go to maintenance."
        )
    reason = f"{window.get_kind_display()} maintenance window #{window.pk}: {window.reason}"
    for status in path:
        node = node_transition(node=node, to=status, by=None, reason=reason)
    window.status, window.started_at = W.ACTIVE, timezone.now()
    window.save(update_fields=["status", "started_at", "updated_at"])
    maintenance_broadcast(node, {"type": "window.started", "window": window.pk, "node": node.pk})
    from apps.jobs.tasks import parts_heal_task

    task_enqueue_on_commit(parts_heal_task)
    return window


@transaction.atomic
def window_complete(*, by: User, window: MaintenanceWindow, work_done: str) -> MaintenanceWindow:
    window = MaintenanceWindow.objects.select_for_update().select_related("node").get(pk=window.pk)
    _check(by=by, node=window.node)
    if window.status != W.ACTIVE:
        raise Conflict(
            f"Only an active window can be completed; this one is "
            f"{window.get_status_display().lower()}."
        )
    if not work_done.strip():
        raise ValidationError({"work_done": ["Record what was done."]})
    now = timezone.now()
    window.status, window.work_done = W.COMPLETED, work_done.strip()
    window.completed_by, window.completed_at = by, now
    window.save(update_fields=["status", "work_done", "completed_by", "completed_at", "updated_at"])
    node = FabricationNode.objects.select_for_update().get(pk=window.node_id)
    if node.status == N.MAINTENANCE:
        node_transition(
            node=node, to=N.IDLE, by=None, reason=f"Maintenance window #{window.pk} completed"
        )
    if window.ticket_id is not None:
        ticket = Ticket.objects.get(pk=window.ticket_id)
        if ticket.status in UNRESOLVED:
            from apps.maintenance.services.tickets import ticket_transition

            ticket_transition(
                by=by,
                ticket=ticket,
                to=Ticket.Status.RESOLVED,
                note=f"Maintenance window #{window.pk}: {window.work_done}",
            )
    maintenance_broadcast(node, {"type": "window.completed", "window": window.pk, "node": node.pk})
    return window


@transaction.atomic
def window_cancel(*, by: User, window: MaintenanceWindow) -> MaintenanceWindow:
    window = MaintenanceWindow.objects.select_for_update().select_related("node").get(pk=window.pk)
    _check(by=by, node=window.node)
    if window.status != W.PLANNED:
        raise Conflict("Only a planned window can be cancelled; complete an active one.")
    window.status = W.CANCELLED
    window.save(update_fields=["status", "updated_at"])
    return window


def windows_start_due(*, now: datetime | None = None) -> list[int]:
    """Starts planned windows whose time has come (the fleet monitor runs it every minute)."""
    now = now or timezone.now()
    started = []
    for window in MaintenanceWindow.objects.filter(status=W.PLANNED, starts_at__lte=now):
        try:
            window_start(window=window)
            started.append(window.pk)
        except Conflict:
            continue  # e.g. decommissioned meanwhile; shown on the window's page
    return started

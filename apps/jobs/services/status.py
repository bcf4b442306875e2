"""A job and its parts move through their states here: each transition recorded, the job
following its parts, the owner told when it ends, live events to the job page."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from apps.core.background import task_enqueue
from apps.core.exceptions import Conflict
from apps.core.models import Notification
from apps.core.realtime import broadcast_on_commit
from apps.core.services import notification_send
from apps.jobs.lifecycle import can_transition, job_status_from_parts
from apps.jobs.models import Job, Part, Status, StatusChange
from apps.notify.models import EventKind, Severity
from apps.notify.services import event_raise
from apps.users.models import User
from apps.vendors.lifecycle import can_transition as node_can_transition
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_transition


def job_group(job_id: int) -> str:
    return f"job.{job_id}"


def _norm(value: str) -> str:
    return " ".join(value.lower().split())


def _record(
    *, job: Job, part: Part | None, before: str, after: str, by: User | None, reason: str
) -> None:
    StatusChange.objects.create(
        job=job, part=part, from_status=before, to_status=after, by=by, reason=reason[:500]
    )


def _queue_scheduling() -> None:
    from apps.jobs.tasks import parts_schedule_task  # tasks import this module

    task_enqueue(parts_schedule_task)  # the beat runs it every minute anyway


def job_sync_status(*, job: Job, by: User | None, reason: str) -> Job:
    """Moves the job to where its parts are, recording the change."""
    job = Job.objects.select_for_update().get(pk=job.pk)
    target = job_status_from_parts(job.parts.values_list("status", flat=True))
    if target == job.status:
        return job
    before = job.status
    job.status = target
    fields = ["status", "updated_at"]
    if target in (Status.COMPLETED, Status.FAILED, Status.CANCELLED):
        job.completed_at = timezone.now()
        fields.append("completed_at")
    job.save(update_fields=fields)
    _record(job=job, part=None, before=before, after=target, by=by, reason=reason)
    broadcast_on_commit(
        job_group(job.pk), {"type": "job.status", "job": job.pk, "from": before, "to": target}
    )
    if target in (Status.COMPLETED, Status.FAILED):
        _tell_owner_job_finished(job=job, reason=reason)
    return job


def _tell_owner_job_finished(*, job: Job, reason: str) -> None:
    """In-app notification and e-mail to the job's owner when it completes or fails."""
    done = job.status == Status.COMPLETED
    title = f"Job {job.pk} {'completed' if done else 'failed'}: {job.title}"
    body = "Every part is made." if done else f"A part failed: {reason}"
    notification_send(
        user=job.owner,
        title=title,
        body=body,
        level=Notification.Level.SUCCESS if done else Notification.Level.CRITICAL,
        link=f"/jobs/{job.pk}/",
    )
    job_id = job.pk
    transaction.on_commit(lambda: _queue_finished_email(job_id, title, body))
    event_raise(
        kind=EventKind.JOB_FINISHED if done else EventKind.JOB_FAILED,
        severity=Severity.INFO if done else Severity.CRITICAL,
        title=title,
        body=body,
        link=f"/jobs/{job.pk}/",
        subject=f"job:{job.pk}",
        organizations=[job.organization_id],
        users=[job.owner],
    )


def _queue_finished_email(job_id: int, title: str, body: str) -> None:
    from apps.jobs.tasks import job_finished_email_task

    task_enqueue(job_finished_email_task, job_id, title, body)


@transaction.atomic
def part_transition(*, part: Part, to: str, by: User | None, reason: str) -> Part:
    part = Part.objects.select_for_update().select_related("job").get(pk=part.pk)
    target = Status(to)
    if not can_transition(part.status, target):
        raise Conflict(
            f"A part cannot go from {part.get_status_display().lower()} to {target.label.lower()}.",
            details={"from": part.status, "to": target.value},
        )
    before = part.status
    part.status = target
    part.save(update_fields=["status", "updated_at"])
    _record(job=part.job, part=part, before=before, after=target, by=by, reason=reason)
    broadcast_on_commit(
        job_group(part.job_id),
        {"type": "part.status", "job": part.job_id, "part": part.pk, "from": before, "to": target},
    )
    job_sync_status(job=part.job, by=by, reason=reason)
    return part


ACTIVE_PART_STATUSES = (Status.SCHEDULED, Status.ASSIGNED, Status.IN_PROGRESS)


def _node_moves(node: FabricationNode, targets: Sequence[str], reason: str) -> None:
    """Walks the node's lifecycle to the first reachable target (platform moves)."""
    for target in targets:
        node.refresh_from_db(fields=["status"])
        if node.status == target:
            continue
        if node_can_transition(node.status, target):
            node_transition(node=node, to=target, by=None, reason=reason)

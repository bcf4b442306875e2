"""Execution through the node work API (device token): the queue in the plan's order, what may
start now, start, progress, completion with a usage report, failure and machine faults."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import NotFound

from apps.core.background import task_enqueue_on_commit
from apps.core.exceptions import Conflict
from apps.core.realtime import broadcast_on_commit
from apps.jobs.models import CadFile, Part, Status
from apps.jobs.providers import machine_fault_reported, part_finished
from apps.jobs.scheduler import ASSEMBLY
from apps.jobs.services.scheduling import part_reschedule
from apps.jobs.services.status import (
    ACTIVE_PART_STATUSES,
    _node_moves,
    _queue_scheduling,
    job_group,
    part_transition,
)
from apps.vendors.models import FabricationNode


@dataclass(frozen=True)
class Release:
    """Whether a node may start a part of its queue now, and if not, from when or after what."""

    ready: bool
    not_before: datetime | None = None
    waits_for: str = ""


def work_queue(*, node_id: int) -> list[Part]:
    """The parts a node should work on, in the plan's order: what runs first, then by planned
    start. An assembly is offered only once every other part of its job is completed; a part
    awaiting its vendor's confirmation is not offered."""
    parts = list(
        Part.objects.filter(assigned_node_id=node_id, status__in=ACTIVE_PART_STATUSES)
        .exclude(status=Status.SCHEDULED, assigned_node__requires_confirmation=True)
        .select_related("job", "assigned_node")
    )
    waiting_jobs = set(
        Part.objects.filter(job_id__in={p.job_id for p in parts if p.process == ASSEMBLY})
        .exclude(process=ASSEMBLY)
        .exclude(status__in=[Status.COMPLETED, Status.CANCELLED])
        .values_list("job_id", flat=True)
    )
    ready = [p for p in parts if not (p.process == ASSEMBLY and p.job_id in waiting_jobs)]
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(
        ready,
        key=lambda p: (
            p.status != Status.IN_PROGRESS,
            p.planned_start or far,
            -p.job.priority,
            p.pk,
        ),
    )


def work_release(parts: Sequence[Part], *, now: datetime | None = None) -> dict[int, Release]:
    """For a node's queue in order (`work_queue`): while a part runs, nothing else starts (a
    machine makes one part at a time), nor while a printer's bed waits to be cleared; then
    the first part not yet started may start, unless the plan holds it back (cheaper, greener
    hours; the site's power cap) until `hold_until`, less JOBS_START_TOLERANCE_MINUTES; the
    parts after it wait for it. A part that is not held
    may start before its planned start: that plan only said when the node would be free, and
    a machine that finished early should not stand idle."""
    now = now or timezone.now()
    tolerance = timedelta(minutes=settings.JOBS_START_TOLERANCE_MINUTES)
    released: dict[int, Release] = {}
    first: Part | None = None
    running = next((p for p in parts if p.status == Status.IN_PROGRESS), None)
    node = parts[0].assigned_node if parts else None
    bed_since = node.bed_clear_pending_since if node is not None else None
    for part in parts:
        if part.status == Status.IN_PROGRESS:
            released[part.pk] = Release(ready=True)
        elif running is not None:  # a machine makes one part at a time
            released[part.pk] = Release(
                ready=False, waits_for=f"part {running.pk} ({running.name}) is under way"
            )
        elif bed_since is not None:
            released[part.pk] = Release(
                ready=False,
                waits_for=f"the bed to be cleared (the last part ended {bed_since:%Y-%m-%d %H:%M}"
                " UTC): confirm on the node's page",
            )
        elif first is not None:
            released[part.pk] = Release(
                ready=False,
                not_before=first.hold_until,
                waits_for=f"part {first.pk} ({first.name}) comes first in the plan",
            )
        else:
            first = part
            if part.hold_until is not None and now < part.hold_until - tolerance:
                shifted = (part.placement or {}).get("shifted_h", 0.0) > 0
                cause = "cheaper, greener hours" if shifted else "the site's power cap"
                released[part.pk] = Release(
                    ready=False,
                    not_before=part.hold_until - tolerance,
                    waits_for=f"planned to start at {part.hold_until:%Y-%m-%d %H:%M} UTC "
                    f"for {cause}",
                )
            else:
                released[part.pk] = Release(ready=True)
    return released


def _work_part(*, node_id: int, part_id: int) -> Part:
    part = Part.objects.select_related("job", "assigned_node").filter(pk=part_id).first()
    if part is None or part.assigned_node_id != node_id:
        # a device learns nothing about parts that are not on its node
        raise NotFound("No such part on this node.")
    return part


def work_file(*, node_id: int, part_id: int) -> CadFile:
    """The part's file (its model, or G-code sliced for a printer) for the node it is on."""
    part = _work_part(node_id=node_id, part_id=part_id)
    if part.cad_file is None:
        raise NotFound("This part has no file: its designer gave dimensions only.")
    return part.cad_file


@transaction.atomic
def work_start(*, node_id: int, part_id: int) -> Part:
    part = _work_part(node_id=node_id, part_id=part_id)
    if part.status == Status.IN_PROGRESS:
        return part  # a retried request
    assert part.assigned_node is not None
    if part.status == Status.SCHEDULED and part.assigned_node.requires_confirmation:
        raise Conflict(
            "The vendor has not accepted this part yet.", details={"status": part.status}
        )
    queue = work_queue(node_id=node_id)
    if part not in queue:
        raise Conflict("This assembly waits for the other parts of its job.")
    release = work_release(queue)[part.pk]
    if not release.ready:
        raise Conflict(
            f"Not yet: {release.waits_for}.",
            details={
                "not_before": release.not_before.isoformat() if release.not_before else None,
                "waits_for": release.waits_for,
            },
        )
    if part.status == Status.SCHEDULED:
        part = part_transition(part=part, to=Status.ASSIGNED, by=None, reason="Node took the part")
    part = part_transition(part=part, to=Status.IN_PROGRESS, by=None, reason="Node started")
    part.started_at = timezone.now()
    part.save(update_fields=["started_at", "updated_at"])
    assert part.assigned_node is not None
    _node_moves(
        part.assigned_node,
        [FabricationNode.Status.ASSIGNED, FabricationNode.Status.EXECUTING],
        f"Executing part {part.pk} of job {part.job_id}",
    )
    return part


@transaction.atomic
def work_progress(*, node_id: int, part_id: int, progress_pct: float) -> Part:
    part = _work_part(node_id=node_id, part_id=part_id)
    if part.status != Status.IN_PROGRESS:
        raise Conflict("Report start before progress.", details={"status": part.status})
    if not 0 <= progress_pct <= 100:
        raise ValidationError({"progress_pct": ["From 0 to 100."]})
    part.progress_pct = max(part.progress_pct, progress_pct)  # late, reordered reports don't rewind
    part.save(update_fields=["progress_pct", "updated_at"])
    broadcast_on_commit(
        job_group(part.job_id),
        {
            "type": "part.progress",
            "job": part.job_id,
            "part": part.pk,
            "progress": part.progress_pct,
        },
    )
    return part


def _node_after_part(part: Part) -> None:
    node = part.assigned_node
    assert node is not None
    if node.bed_clear_required:
        # the part (or what is left of it) is on the bed: nothing starts until it is cleared
        node.bed_clear_pending_since = timezone.now()
        node.save(update_fields=["bed_clear_pending_since", "updated_at"])
    busy = Part.objects.filter(assigned_node=node, status=Status.IN_PROGRESS).exists()
    if busy:
        return
    queued = Part.objects.filter(
        assigned_node=node, status__in=[Status.SCHEDULED, Status.ASSIGNED]
    ).exists()
    targets = [FabricationNode.Status.ASSIGNED]
    if not queued:
        targets.append(FabricationNode.Status.IDLE)
    _node_moves(node, targets, f"Part {part.pk} finished")


REPORT_FIELDS = ("material_used_g", "waste_g", "energy_kwh")


def _usage_report(report: dict[str, Any] | None) -> dict[str, float]:
    """What the node says the part used; each figure optional, none negative."""
    clean: dict[str, float] = {}
    errors: dict[str, list[str]] = {}
    for key, value in (report or {}).items():
        if key not in REPORT_FIELDS:
            errors[key] = [f"Unknown; report any of {', '.join(REPORT_FIELDS)}."]
        elif value is None:
            continue
        elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            errors[key] = ["Must be a number, 0 or more."]
        else:
            clean[key] = float(value)
    if errors:
        raise ValidationError(errors)
    return clean


def _announce_finished(part: Part, report: dict[str, float]) -> None:
    """After commit, so usage and energy are recorded only for a finish that stands."""
    part_id, node_id, status = part.pk, part.assigned_node_id, part.status
    transaction.on_commit(
        lambda: part_finished.send(
            sender=Part, part_id=part_id, node_id=node_id, status=status, report=report
        )
    )


@transaction.atomic
def work_complete(
    *,
    node_id: int,
    part_id: int,
    quality_score: float,
    report: dict[str, Any] | None = None,
) -> Part:
    part = _work_part(node_id=node_id, part_id=part_id)
    if part.status == Status.COMPLETED:
        return part
    if not 0 <= quality_score <= 1:
        raise ValidationError({"quality_score": ["From 0 (scrap) to 1 (perfect)."]})
    used = _usage_report(report)
    if part.status != Status.IN_PROGRESS:
        raise Conflict("Report start before completion.", details={"status": part.status})
    part.quality_score = quality_score
    part.progress_pct = 100.0
    part.finished_at = timezone.now()
    part.reported_material_g = used.get("material_used_g")
    part.reported_waste_g = used.get("waste_g")
    part.reported_energy_kwh = used.get("energy_kwh")
    part.save(
        update_fields=[
            "quality_score",
            "progress_pct",
            "finished_at",
            "reported_material_g",
            "reported_waste_g",
            "reported_energy_kwh",
            "updated_at",
        ]
    )
    part = part_transition(
        part=part, to=Status.COMPLETED, by=None, reason=f"Completed, quality {quality_score:.2f}"
    )
    _node_after_part(part)
    _announce_finished(part, used)
    return part


@transaction.atomic
def work_fail(*, node_id: int, part_id: int, reason: str, machine_fault: bool) -> Part:
    """The part failed. A machine fault (the machine broke, not the part) sends the part to
    another node; otherwise the part, and so its job, fails."""
    part = _work_part(node_id=node_id, part_id=part_id)
    if not reason.strip():
        raise ValidationError({"reason": ["Say why the part failed."]})
    if part.status not in (Status.ASSIGNED, Status.IN_PROGRESS, Status.SCHEDULED):
        raise Conflict(f"A {part.get_status_display().lower()} part cannot fail.")
    if machine_fault:
        return _machine_fault(node_id=node_id, part=part, reason=reason.strip())
    if part.status == Status.SCHEDULED:
        part = part_transition(part=part, to=Status.ASSIGNED, by=None, reason="Node took the part")
    if part.status == Status.ASSIGNED:
        part = part_transition(part=part, to=Status.IN_PROGRESS, by=None, reason="Node started")
    part.failure_reason = reason.strip()[:500]
    part.finished_at = timezone.now()
    part.save(update_fields=["failure_reason", "finished_at", "updated_at"])
    part = part_transition(part=part, to=Status.FAILED, by=None, reason=reason.strip())
    _node_after_part(part)
    # the material already used is waste, and the energy was spent all the same
    _announce_finished(part, {})
    return part


def _machine_fault(*, node_id: int, part: Part, reason: str) -> Part:
    """The machine broke, not the part: the part goes elsewhere and never back to this node,
    the node goes to maintenance (its other parts move with self-healing), and maintenance
    hears of it (machine_fault_reported: a ticket is opened or added to)."""
    part = part_reschedule(part=part, reason=f"machine fault: {reason}", exclude_node=True)
    node = FabricationNode.objects.get(pk=node_id)
    S = FabricationNode.Status
    _node_moves(node, [S.ASSIGNED, S.IDLE, S.MAINTENANCE], f"Machine fault reported: {reason}")
    from apps.jobs.tasks import parts_heal_task

    task_enqueue_on_commit(parts_heal_task)
    transaction.on_commit(_queue_scheduling)
    transaction.on_commit(
        lambda: machine_fault_reported.send(
            sender=Part, node_id=node_id, part_id=part.pk, reason=reason
        )
    )
    return part

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from apps.core.exceptions import Conflict
from apps.core.realtime import broadcast_on_commit
from apps.jobs.cad import cad_measure
from apps.jobs.estimates import PartSpec, job_estimate
from apps.jobs.lifecycle import can_transition, job_status_from_parts
from apps.jobs.models import CadFile, Job, Part, Status, StatusChange
from apps.jobs.selectors import job_can_change, schedulable_nodes
from apps.users.models import Organization, User
from apps.users.roles import Action, Scope, scope_for
from apps.users.selectors import user_organization_ids

PART_FIELDS = (
    "name",
    "material",
    "process",
    "quantity",
    "size_x_mm",
    "size_y_mm",
    "size_z_mm",
    "complexity",
    "batch_group",
)
MAX_PARTS = 200


def job_group(job_id: int) -> str:
    return f"job.{job_id}"


# --- CAD ---------------------------------------------------------------------------------------


def cad_file_upload(
    *,
    by: User,
    name: str,
    data: bytes,
    declared_mm: tuple[float, float, float] | None = None,
) -> CadFile:
    if scope_for(by, Action.JOB_CREATE) is None:
        raise PermissionDenied("Your role does not allow creating jobs.")
    measure = cad_measure(data=data, name=name, declared_mm=declared_mm)
    cad = CadFile(
        owner=by,
        original_name=name[:255],
        format=measure.format,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        size_x_mm=measure.size_mm[0],
        size_y_mm=measure.size_mm[1],
        size_z_mm=measure.size_mm[2],
        volume_cm3=measure.volume_cm3,
        surface_area_cm2=measure.surface_area_cm2,
        watertight=measure.watertight,
        triangles=measure.triangles,
    )
    cad.file.save(f"{cad.sha256[:16]}.{measure.format}", ContentFile(data), save=False)
    cad.save()
    return cad


# --- Submission ----------------------------------------------------------------------------------


def _part_specs(*, by: User, parts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Checks each part's fields, fills size and volume from its CAD file, and reports every
    bad part by index."""
    if not parts:
        raise ValidationError({"parts": ["A job needs at least one part."]})
    if len(parts) > MAX_PARTS:
        raise ValidationError({"parts": [f"At most {MAX_PARTS} parts per job."]})
    cleaned: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for index, raw in enumerate(parts):
        part = {k: raw.get(k) for k in PART_FIELDS if raw.get(k) is not None}
        cad = raw.get("cad_file")
        if isinstance(cad, int):
            cad = CadFile.objects.filter(pk=cad, owner=by).first()
            if cad is None:
                errors[f"parts[{index}]"] = ["cad_file: no such upload of yours."]
                continue
        if isinstance(cad, CadFile):
            part.setdefault("size_x_mm", cad.size_x_mm)
            part.setdefault("size_y_mm", cad.size_y_mm)
            part.setdefault("size_z_mm", cad.size_z_mm)
            part["volume_cm3"] = cad.volume_cm3
            part["surface_area_cm2"] = cad.surface_area_cm2
            part["cad_file"] = cad
            part.setdefault("name", cad.original_name.rsplit(".", 1)[0])
        missing = [
            f
            for f in ("name", "material", "process", "size_x_mm", "size_y_mm", "size_z_mm")
            if not part.get(f)
        ]
        if missing:
            errors[f"parts[{index}]"] = [f"{', '.join(missing)}: required (or upload a CAD file)."]
            continue
        try:
            Part(job=Job(), **part).clean_fields(exclude=["job"])
        except ValidationError as exc:
            errors[f"parts[{index}]"] = [f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()]
            continue
        cleaned.append(part)
    if errors:
        raise ValidationError(errors)
    return cleaned


def _spec(part: dict[str, Any]) -> PartSpec:
    return PartSpec(
        name=str(part["name"]),
        material=str(part["material"]),
        process=str(part["process"]),
        quantity=int(part.get("quantity", 1)),
        size_mm=(float(part["size_x_mm"]), float(part["size_y_mm"]), float(part["size_z_mm"])),
        complexity=int(part.get("complexity", 5)),
        volume_cm3=part.get("volume_cm3"),
    )


def job_estimate_preview(*, by: User, parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Feasibility and estimates before submitting; stores nothing."""
    cleaned = _part_specs(by=by, parts=parts)
    return job_estimate([_spec(p) for p in cleaned], list(schedulable_nodes()), now=timezone.now())


def _organization_for(*, by: User, organization: Organization | None) -> Organization:
    if organization is None:
        ids = user_organization_ids(user=by)
        if len(ids) != 1:
            raise ValidationError(
                {"organization": ["Say which of your organizations the job belongs to."]}
            )
        return Organization.objects.get(pk=ids[0])
    if scope_for(
        by, Action.JOB_CREATE
    ) != Scope.ALL and organization.pk not in user_organization_ids(user=by):
        raise PermissionDenied("You are not a member of that organization.")
    return organization


def _record(
    *, job: Job, part: Part | None, before: str, after: str, by: User | None, reason: str
) -> None:
    StatusChange.objects.create(
        job=job, part=part, from_status=before, to_status=after, by=by, reason=reason[:500]
    )


@transaction.atomic
def job_submit(
    *,
    by: User,
    title: str,
    parts: Sequence[dict[str, Any]],
    organization: Organization | None = None,
    priority: int = 5,
    deadline: Any = None,
    metadata: dict[str, Any] | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
) -> Job:
    """Creates the job SUBMITTED, validates it against the fleet (VALIDATED, with estimates) or
    rejects it with the failing parts named, and queues scheduling."""
    if scope_for(by, Action.JOB_CREATE) is None:
        raise PermissionDenied("Your role does not allow creating jobs.")
    org = _organization_for(by=by, organization=organization)
    cleaned = _part_specs(by=by, parts=parts)
    now = timezone.now()
    if deadline is not None and deadline <= now:
        raise ValidationError({"deadline": ["The deadline must be in the future."]})
    estimate = job_estimate([_spec(p) for p in cleaned], list(schedulable_nodes()), now=now)
    if not estimate["feasible"]:
        raise ValidationError(estimate["problems"])
    job = Job(
        owner=by,
        organization=org,
        title=title.strip(),
        priority=priority,
        deadline=deadline,
        metadata=metadata or {},
        latitude=latitude,
        longitude=longitude,
    )
    job.full_clean(exclude=["estimates"])
    job.save()
    _record(job=job, part=None, before="", after=Status.SUBMITTED, by=by, reason="Submitted")
    for index, part in enumerate(cleaned):
        estimate_part = estimate["parts"][index]
        created = Part.objects.create(
            job=job,
            estimates={k: v for k, v in estimate_part.items() if k not in ("index", "name")},
            **part,
        )
        created.status = Status.VALIDATED
        created.save(update_fields=["status", "updated_at"])
        _record(
            job=job,
            part=created,
            before=Status.SUBMITTED,
            after=Status.VALIDATED,
            by=None,
            reason=f"{len(estimate_part['candidates'])} suitable node(s)",
        )
    job.estimates = {k: v for k, v in estimate.items() if k != "parts"}
    job.save(update_fields=["estimates", "updated_at"])
    return job_sync_status(job=job, by=None, reason="Every part has a suitable node")


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
    return job


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


@transaction.atomic
def job_cancel(*, job: Job, by: User, reason: str) -> Job:
    if not job_can_change(user=by, job=job):
        raise PermissionDenied("Only the job's owner or an admin may cancel it.")
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.is_final:
        raise Conflict(f"The job is already {job.get_status_display().lower()}.")
    if not reason.strip():
        raise ValidationError({"reason": ["Say why the job is cancelled."]})
    for part in job.parts.exclude(status__in=[Status.COMPLETED, Status.FAILED, Status.CANCELLED]):
        part_transition(part=part, to=Status.CANCELLED, by=by, reason=reason.strip())
    return job_sync_status(job=job, by=by, reason=reason.strip())


@transaction.atomic
def job_set_priority(*, job: Job, by: User, priority: int) -> Job:
    if not job_can_change(user=by, job=job):
        raise PermissionDenied("Only the job's owner or an admin may change its priority.")
    if not isinstance(priority, int) or not 1 <= priority <= 10:
        raise ValidationError({"priority": ["A whole number from 1 to 10."]})
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.is_final:
        raise Conflict(f"The job is already {job.get_status_display().lower()}.")
    job.priority = priority
    job.save(update_fields=["priority", "updated_at"])
    return job

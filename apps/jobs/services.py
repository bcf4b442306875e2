from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework.exceptions import NotFound

from apps.core.background import task_enqueue, task_enqueue_on_commit
from apps.core.exceptions import Conflict
from apps.core.models import Notification
from apps.core.realtime import broadcast_on_commit
from apps.core.services import notification_send
from apps.jobs import providers
from apps.jobs.cad import MAX_SIZE_MM, cad_measure
from apps.jobs.duration import duration_model_active
from apps.jobs.estimates import (
    DEFAULT_PROCESS,
    PROCESS_MODES,
    SETUP_HOURS,
    UTILISATION,
    PartSpec,
    job_estimate,
    money,
    node_fit_problem,
)
from apps.jobs.lifecycle import RESCHEDULE_FROM, can_transition, job_status_from_parts
from apps.jobs.models import CadFile, Job, JobTemplate, Part, Status, StatusChange
from apps.jobs.providers import machine_fault_reported, node_went_silent, part_finished
from apps.jobs.scheduler import (
    ASSEMBLY,
    EnergyOutlook,
    NodeRisk,
    NodeState,
    PartTask,
    Plan,
    hours_until,
    schedule,
)
from apps.jobs.selectors import job_can_change, schedulable_nodes, working_nodes
from apps.telemetry.selectors import latest_points
from apps.users.models import Organization, User
from apps.users.roles import Action, Scope, scope_for
from apps.users.selectors import user_organization_ids
from apps.vendors import catalog
from apps.vendors.lifecycle import can_transition as node_can_transition
from apps.vendors.models import FabricationNode
from apps.vendors.selectors import node_can_manage
from apps.vendors.services import node_transition

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


def _catalogue_codes(part: dict[str, Any]) -> list[str]:
    """Sets the part's material and process to their catalogue codes (any spelling the
    catalogue knows is accepted); returns what it does not know, naming the valid codes."""
    problems = []
    for kind, to_code in (("material", catalog.material_code), ("process", catalog.process_code)):
        code = to_code(str(part[kind]))
        if code is None:
            problems.append(f"{kind}: {catalog.unknown_message(kind, str(part[kind]))}")
        else:
            part[kind] = code
    return problems


def _part_specs(*, by: User | None, parts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Checks each part's fields, fills size and volume from its CAD file (an upload of `by`;
    none without a user), and reports every bad part by index."""
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
            cad = CadFile.objects.filter(pk=cad, owner=by).first() if by else None
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
        unknown = _catalogue_codes(part)
        if unknown:
            errors[f"parts[{index}]"] = unknown
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


def _batch_problems(parts: list[dict[str, Any]], nodes: Sequence[Any]) -> dict[str, list[str]]:
    """A batch group's parts run on one node, one after the other, with one set-up: they must
    share material and process, and one node must be able to make them all."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, part in enumerate(parts):
        group = str(part.get("batch_group") or "").strip()
        if group:
            part["batch_group"] = group
            groups[group].append(index)
    problems: dict[str, list[str]] = {}
    for group, members in groups.items():
        first = parts[members[0]]
        setup = (_norm(first["material"]), _norm(first["process"]))
        for index in members[1:]:
            other = parts[index]
            if (_norm(other["material"]), _norm(other["process"])) != setup:
                problems[f"parts[{index}]"] = [
                    f"batch_group '{group}': a batch runs with one set-up, so its parts share "
                    f"material and process; part {members[0]} is {_setup_label(first)}, this "
                    f"one {_setup_label(other)}."
                ]
        if len(members) > 1 and not any(f"parts[{i}]" in problems for i in members):
            specs = [_spec(parts[i]) for i in members]
            if not any(all(node_fit_problem(n, spec) is None for spec in specs) for n in nodes):
                problems[f"parts[{members[0]}]"] = [
                    f"batch_group '{group}': no single node can make all {len(members)} of its "
                    "parts (parts "
                    + ", ".join(str(i) for i in members)
                    + "); split the batch or change a part."
                ]
    return problems


def _setup_label(part: dict[str, Any]) -> str:
    return f"{catalog.material_label(part['material'])} by {catalog.process_label(part['process'])}"


def _norm(value: str) -> str:
    return " ".join(value.lower().split())


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


def job_estimate_preview(
    *,
    by: User,
    parts: Sequence[dict[str, Any]],
    priority: int = 5,
    deadline: datetime | None = None,
    timing: str = Job.Timing.ASAP,
    latitude: float | None = None,
    longitude: float | None = None,
) -> dict[str, Any]:
    """Feasibility and estimates before submitting, timed by a dry run of the scheduler with
    the job's priority, deadline and timing; stores nothing."""
    _, estimate = _estimate(
        by=by,
        parts=parts,
        now=timezone.now(),
        priority=priority,
        deadline=deadline,
        timing=timing if timing in Job.Timing.values else Job.Timing.ASAP,
        latitude=latitude,
        longitude=longitude,
    )
    return estimate


DRAFT_JOB = -1  # the job being estimated, in a dry run (stored ids are positive)


def _drafts(
    cleaned: list[dict[str, Any]],
    estimate: dict[str, Any],
    *,
    now: datetime,
    priority: int,
    deadline: datetime | None,
    timing: str,
    latitude: float | None,
    longitude: float | None,
) -> tuple[list[PartTask], dict[int, tuple[int, int, int]]]:
    """The job's parts as the scheduler would get them once stored, lots and all, with ids
    below zero; and {draft id: (part index, lot, lots)}."""
    drafts: list[PartTask] = []
    where: dict[int, tuple[int, int, int]] = {}
    for index, part in enumerate(cleaned):
        figures = estimate["parts"][index]
        quantity = int(part.get("quantity", 1))
        lots = [quantity] if part.get("batch_group") else figures["lots"]
        mode = PROCESS_MODES.get(_norm(str(part["process"])), DEFAULT_PROCESS)[0]
        for lot, units in enumerate(lots, start=1):
            share = units / quantity
            draft_id = -(len(drafts) + 1)
            drafts.append(
                PartTask(
                    id=draft_id,
                    job_id=DRAFT_JOB,
                    priority=priority,
                    material=str(part["material"]),
                    process=str(part["process"]),
                    size_mm=(
                        float(part["size_x_mm"]),
                        float(part["size_y_mm"]),
                        float(part["size_z_mm"]),
                    ),
                    hours=float(figures["duration_h"]) * share,
                    setup_h=SETUP_HOURS[mode],
                    deadline_h=hours_until(deadline, now),
                    latitude=latitude,
                    longitude=longitude,
                    material_g=float(figures["material_g"]) * share,
                    load=UTILISATION[mode],
                    timing=timing,
                    batch=str(part.get("batch_group") or ""),
                )
            )
            where[draft_id] = (index, lot, len(lots))
    return drafts, where


def _dry_run(
    cleaned: list[dict[str, Any]], estimate: dict[str, Any], *, now: datetime, **job: Any
) -> dict[str, Any]:
    """When the job would finish if it were submitted now: the scheduler's own plan for it on
    the fleet as it stands (queues, other waiting parts, maintenance windows, power caps, node
    health, energy-aware timing), made and thrown away. Stores nothing."""
    drafts, where = _drafts(cleaned, estimate, now=now, **job)
    waiting = list(
        Part.objects.filter(
            status=Status.VALIDATED, job__status__in=[Status.VALIDATED, *ACTIVE_PART_STATUSES]
        )
        .select_related("job")
        .prefetch_related("declined_nodes")
    )
    plan, _ = _plan(waiting, now=now, drafts=drafts)
    chosen = [a for a in plan.assignments if a.part in where]
    names = dict(
        FabricationNode.objects.filter(
            pk__in={a.node for a in chosen if a.node is not None}
        ).values_list("pk", "name")
    )
    rows = []
    for a in sorted(chosen, key=lambda a: -a.part):
        index, lot, lots = where[a.part]
        row: dict[str, Any] = {
            "index": index,
            "name": cleaned[index]["name"],
            "lot": lot,
            "lots": lots,
            "node": a.node,
            "node_name": names.get(a.node) if a.node is not None else None,
            "reason": a.reason,
        }
        if a.node is not None:
            row["start_at"] = (now + timedelta(hours=a.start_h)).isoformat()
            row["finish_at"] = (now + timedelta(hours=a.finish_h)).isoformat()
        rows.append(row)
    placed = all(a.node is not None for a in chosen)
    finish_h = max((a.finish_h for a in chosen), default=0.0)
    return {
        "parts": rows,
        "placed": placed,
        "completion": (now + timedelta(hours=finish_h)).isoformat() if placed else None,
        "hours": round(finish_h, 4) if placed else None,
        "at": now.isoformat(),
    }


def _estimate(
    *, by: User, parts: Sequence[dict[str, Any]], now: datetime, **job: Any
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The cleaned parts and the job's estimate: feasibility and cost per part from the parts
    and the fleet's ratings; time from a dry run of the scheduler, so what the designer is told
    is what the plan will say (`wall_time_h`, `earliest_completion`; `run_time_h` is the run
    alone, in parallel on idle machines)."""
    cleaned = _part_specs(by=by, parts=parts)
    nodes = list(schedulable_nodes())
    estimate = job_estimate(
        [_spec(p) for p in cleaned], nodes, now=now, duration_model=duration_model_active()
    )
    estimate["problems"].update(_batch_problems(cleaned, nodes))
    estimate["feasible"] = not estimate["problems"]
    estimate["run_time_h"] = estimate["wall_time_h"]
    if not estimate["feasible"]:
        estimate["earliest_completion"] = None
        return cleaned, estimate
    plan = _dry_run(cleaned, estimate, now=now, **job)
    estimate["plan"] = plan
    if plan["placed"]:
        estimate["wall_time_h"] = plan["hours"]
        estimate["earliest_completion"] = plan["completion"]
    return cleaned, estimate


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
    timing: str = Job.Timing.ASAP,
) -> Job:
    """Creates the job SUBMITTED, validates it against the fleet (VALIDATED, with estimates) or
    rejects it with the failing parts named, and queues scheduling."""
    if scope_for(by, Action.JOB_CREATE) is None:
        raise PermissionDenied("Your role does not allow creating jobs.")
    org = _organization_for(by=by, organization=organization)
    now = timezone.now()
    if deadline is not None and deadline <= now:
        raise ValidationError({"deadline": ["The deadline must be in the future."]})
    if timing not in Job.Timing.values:
        raise ValidationError({"timing": [f"One of {', '.join(Job.Timing.values)}."]})
    if timing != Job.Timing.ASAP and deadline is None:
        raise ValidationError(
            {"timing": ["Give a deadline: the platform moves the job only as far as it allows."]}
        )
    cleaned, estimate = _estimate(
        by=by,
        parts=parts,
        now=now,
        priority=priority,
        deadline=deadline,
        timing=timing,
        latitude=latitude,
        longitude=longitude,
    )
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
        timing=timing,
    )
    job.full_clean(exclude=["estimates"])
    job.save()
    _record(job=job, part=None, before="", after=Status.SUBMITTED, by=by, reason="Submitted")
    for index, part in enumerate(cleaned):
        estimate_part = estimate["parts"][index]
        # a batch's part is made whole, on its batch's node
        lots = [part.get("quantity", 1)] if part.get("batch_group") else estimate_part["lots"]
        for lot, quantity in enumerate(lots, start=1):
            created = Part.objects.create(
                job=job,
                estimates=_lot_estimate(estimate_part, quantity / part.get("quantity", 1)),
                **{**part, "quantity": quantity},
                lot=lot,
                lots=len(lots),
            )
            created.status = Status.VALIDATED
            created.save(update_fields=["status", "updated_at"])
            split = f"; lot {lot} of {len(lots)}" if len(lots) > 1 else ""
            _record(
                job=job,
                part=created,
                before=Status.SUBMITTED,
                after=Status.VALIDATED,
                by=None,
                reason=f"{len(estimate_part['candidates'])} suitable node(s){split}",
            )
    job.estimates = {k: v for k, v in estimate.items() if k != "parts"}
    job.save(update_fields=["estimates", "updated_at"])
    transaction.on_commit(_queue_scheduling)
    return job_sync_status(job=job, by=None, reason="Every part has a suitable node")


def _lot_estimate(part: dict[str, Any], share: float) -> dict[str, Any]:
    """A part's estimate for `share` of its units (a lot)."""
    scaled = {k: v for k, v in part.items() if k not in ("index", "name")}
    for key in ("duration_h", "energy_kwh", "material_g", "material_cm3"):
        scaled[key] = round(part[key] * share, 4)
    scaled["cost"] = {k: str(money(float(v) * share)) for k, v in part["cost"].items()}
    scaled["wall_time_h"] = scaled["duration_h"]
    return scaled


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


# --- Scheduling ----------------------------------------------------------------------------------

ACTIVE_PART_STATUSES = (Status.SCHEDULED, Status.ASSIGNED, Status.IN_PROGRESS)


def _remaining_hours(part: Part) -> float:
    return float(part.estimates.get("duration_h", 0.0)) * (1 - part.progress_pct / 100)


def _node_states(*, now: datetime, horizon_h: float) -> tuple[list[NodeState], EnergyOutlook]:
    """The working fleet as the scheduler sees it, with what materials (stock), energy (sites,
    prices, caps, heat-up) and maintenance (windows) tell it through apps/jobs/providers.py."""
    backlog: dict[int, float] = defaultdict(float)
    for part in Part.objects.filter(
        status__in=ACTIVE_PART_STATUSES, assigned_node__isnull=False
    ).only("assigned_node_id", "estimates", "progress_pct"):
        backlog[part.assigned_node_id] += _remaining_hours(part)  # type: ignore[index]
    nodes = list(working_nodes())
    ids = [node.pk for node in nodes]
    stock = providers.node_stock(ids)
    outlook = providers.energy_outlook(ids, now, horizon_h)
    blocked = providers.node_blocked(ids, now, horizon_h)
    risks = providers.node_health(ids, now, horizon_h)
    silent = _silent_nodes(node_ids=ids, now=now)
    states = [
        NodeState(
            id=node.pk,
            processes=frozenset(node.processes),
            materials=frozenset(node.materials),
            build_mm=tuple(sorted((node.build_x_mm, node.build_y_mm, node.build_z_mm))),  # type: ignore[arg-type]
            rated_power_kw=node.rated_power_kw,
            latitude=node.latitude,
            longitude=node.longitude,
            backlog_h=backlog[node.pk],
            stock=stock.get(node.pk, {}),
            site=outlook.node_site.get(node.pk),
            peak_h=outlook.peak_h.get(node.pk, 0.0),
            blocked=tuple(
                (hours_until(start, now) or 0.0, hours_until(end, now) or 0.0)
                for start, end in blocked.get(node.pk, [])
            ),
            name=node.name,
            **_health(risks.get(node.pk, NodeRisk()), _minutes(silent.get(node.pk), now)),
        )
        for node in nodes
    ]
    return states, outlook


def _health(risk: NodeRisk, silent_min: int | None) -> dict[str, Any]:
    """A node's health fields for the scheduler: maintenance's view (providers.node_health),
    no work over JOBS_SCHEDULER_MAX_RISK, and none while silent by the rule self-healing moves
    work by (so a node never gets back the parts just taken from it)."""
    reasons = list(risk.reasons)
    excluded = risk.excluded
    # a provider's slip stays in 0-1, and a risk that is no number counts as the worst
    level = min(1.0, max(0.0, risk.risk)) if risk.risk == risk.risk else 1.0
    if level >= settings.JOBS_SCHEDULER_MAX_RISK:
        excluded = True
        reasons.insert(0, f"health {100 * (1 - level):.0f}/100")
    if silent_min is not None and not risk.offline:
        excluded = True
        reasons.insert(0, f"silent for {silent_min} min")
    return {
        "health": 1.0 - level,
        "rul_h": risk.rul_h,
        "failure_p": risk.failure_p,
        "failure_within_h": risk.failure_within_h,
        "excluded_reason": (", ".join(reasons) or "unhealthy") if excluded else None,
    }


def _silent_nodes(*, node_ids: list[int], now: datetime) -> dict[int, datetime]:
    """{node id: its last report} for the nodes that have reported telemetry before and sent
    nothing for longer than JOBS_NODE_SILENT_MINUTES (a node that never reported is not silent:
    it may run without an edge gateway)."""
    limit = timedelta(minutes=settings.JOBS_NODE_SILENT_MINUTES)
    return {
        point.node_id: point.time
        for point in latest_points(node_ids=node_ids)
        if now - point.time > limit
    }


def _minutes(since: datetime | None, now: datetime) -> int | None:
    return None if since is None else int((now - since).total_seconds() // 60)


def _task(
    part: Part, *, now: datetime, ready_h: float, only: frozenset[int] | None = None
) -> PartTask:
    mode = PROCESS_MODES.get(" ".join(part.process.lower().split()), DEFAULT_PROCESS)[0]
    return PartTask(
        id=part.pk,
        job_id=part.job_id,
        priority=part.job.priority,
        material=part.material,
        process=part.process,
        size_mm=(part.size_x_mm, part.size_y_mm, part.size_z_mm),
        hours=float(part.estimates.get("duration_h", 1.0)),
        setup_h=SETUP_HOURS[mode],
        deadline_h=hours_until(part.job.deadline, now),
        latitude=part.job.latitude,
        longitude=part.job.longitude,
        ready_h=ready_h,
        excluded=frozenset(node.pk for node in part.declined_nodes.all()),
        only=only,
        material_g=float(part.estimates.get("material_g", 0.0)),
        load=UTILISATION[mode],
        timing=part.job.timing,
        batch=part.batch_group,
    )


def _plan(
    pending: Sequence[Part], *, now: datetime, drafts: Sequence[PartTask] = ()
) -> tuple[Plan, EnergyOutlook]:
    """The scheduler's plan for the pending parts (and `drafts`, parts not yet stored) on the
    working fleet as it stands: its queues, sites, windows and what the providers say."""
    # an assembly may start once its job's parts already placed elsewhere are done
    ready: dict[int, float] = defaultdict(float)
    for sibling in Part.objects.filter(
        job_id__in={p.job_id for p in pending},
        status__in=ACTIVE_PART_STATUSES,
        planned_finish__isnull=False,
    ).exclude(process=ASSEMBLY):
        hours = hours_until(sibling.planned_finish, now) or 0.0
        ready[sibling.job_id] = max(ready[sibling.job_id], hours)
    # parts some app limits to certain nodes (capacity bought on a vendor's machines)
    allowed = providers.part_allowed_nodes(pending)
    tasks = [
        _task(
            p,
            now=now,
            ready_h=ready[p.job_id] if p.process == ASSEMBLY else 0,
            only=allowed.get(p.pk),
        )
        for p in pending
    ] + list(drafts)
    horizon = max([t.deadline_h or 0.0 for t in tasks] + [48.0])
    nodes, outlook = _node_states(now=now, horizon_h=min(horizon, 7 * 24.0))
    plan = schedule(
        tasks,
        nodes,
        weights=settings.JOBS_SCHEDULER_WEIGHTS,
        sites=outlook.sites,
        max_failure=settings.JOBS_SCHEDULER_MAX_FAILURE,
    )
    return plan, outlook


@transaction.atomic
def parts_schedule(*, now: datetime | None = None) -> Plan:
    """Places every validated part on a node (SCHEDULED) and stores why. Rows being scheduled
    by a concurrent run are skipped, not waited for."""
    now = now or timezone.now()
    pending = list(
        Part.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(status=Status.VALIDATED, job__status__in=[Status.VALIDATED, *ACTIVE_PART_STATUSES])
        .select_related("job")
        .prefetch_related("declined_nodes")
    )
    if not pending:
        return Plan([], 0.0, {})
    pending += _pull_back_dependents(pending)
    plan, outlook = _plan(pending, now=now)
    placed = plan.by_part()
    confirming = set(
        FabricationNode.objects.filter(
            pk__in={a.node for a in plan.assignments if a.node is not None},
            requires_confirmation=True,
        ).values_list("pk", flat=True)
    )
    awaiting: dict[int, list[Part]] = defaultdict(list)
    for part in pending:
        choice = placed[part.pk]
        part.scheduled_at = now
        if choice.node is None:
            said = part.placement.get("reason")
            part.placement = {"reason": choice.reason, "skipped": choice.skipped}
            part.save(update_fields=["placement", "scheduled_at", "updated_at"])
            if choice.reason != said:  # an open job page shows why it waits now
                providers.job_panel_changed(part.job_id, "placement")
            continue
        part.assigned_node_id = choice.node
        part.planned_start = now + timedelta(hours=choice.start_h)
        part.planned_finish = now + timedelta(hours=choice.finish_h)
        held = choice.shifted_h > 0 or choice.staggered_h > 0
        part.hold_until = part.planned_start if held else None
        part.placement = {
            "late": choice.late,
            "batched": choice.batched,
            "reason": choice.reason,
            "candidates": choice.candidates,
            "skipped": choice.skipped,
            "weights": plan.weights,
        }
        if choice.shifted_h or choice.staggered_h:
            part.placement.update(shifted_h=choice.shifted_h, staggered_h=choice.staggered_h)
        if choice.energy_cost is not None:
            part.placement["energy"] = {
                "kwh": choice.kwh,
                "cost": choice.energy_cost,
                "co2e_kg": choice.co2e_kg,
                "currency": outlook.currency,
            }
        part.save(
            update_fields=[
                "assigned_node",
                "planned_start",
                "planned_finish",
                "scheduled_at",
                "hold_until",
                "placement",
                "updated_at",
            ]
        )
        part_transition(part=part, to=Status.SCHEDULED, by=None, reason=choice.reason)
        if choice.node in confirming:
            awaiting[choice.node].append(part)
    _ask_vendors_to_confirm(awaiting)
    return plan


def _ask_vendors_to_confirm(awaiting: dict[int, list[Part]]) -> None:
    """One notification per node and vendor member for the parts that wait for their answer."""
    hours = settings.JOBS_CONFIRM_HOURS
    for node in FabricationNode.objects.filter(pk__in=awaiting).select_related("vendor"):
        parts = awaiting[node.pk]
        names = ", ".join(p.name for p in parts[:5]) + ("…" if len(parts) > 5 else "")
        for membership in node.vendor.memberships.select_related("user"):
            notification_send(
                user=membership.user,
                title=f"{len(parts)} part(s) await your confirmation on {node.name}",
                body=f"{names}. Accept or decline within {hours:g} h, or they go to other nodes.",
                level=Notification.Level.WARNING,
                link="/vendor/work/",
            )


@transaction.atomic
def part_reschedule(
    *, part: Part, reason: str, by: User | None = None, exclude_node: bool = False
) -> Part:
    """Self-healing: takes an unfinished part off its node and back to VALIDATED, so the next
    scheduling run places it elsewhere; tells the designer. The platform's move, or a vendor's
    decline (`exclude_node`: that node is never offered the part again)."""
    part = (
        Part.objects.select_for_update(of=("self",))
        .select_related("job", "assigned_node")
        .get(pk=part.pk)
    )
    if part.status not in RESCHEDULE_FROM:
        raise Conflict(f"A {part.get_status_display().lower()} part is not rescheduled.")
    node = part.assigned_node
    if exclude_node and node is not None:
        part.declined_nodes.add(node)
    _unplace(part, reason=reason, by=by)
    where = f" (on {node.name})" if node is not None and node.name not in reason else ""
    next_step = (
        "The scheduler places it on another suitable node."
        if part_has_other_nodes(part)
        else "No other node can make it now: it waits until one can, or you may cancel the job."
    )
    notification_send(
        user=part.job.owner,
        title=f"Part {part.name} of job {part.job_id} is being moved",
        body=f"{reason[:1].upper()}{reason[1:]}{where}. {next_step}",
        level=Notification.Level.WARNING,
        link=f"/jobs/{part.job_id}/",
    )
    return part


def _unplace(part: Part, *, reason: str, by: User | None) -> None:
    """The part (locked) leaves its node and its plan, back to VALIDATED for the scheduler."""
    before = part.status
    part.status = Status.VALIDATED
    part.assigned_node = None
    part.progress_pct = 0.0
    part.started_at = None
    part.planned_start = part.planned_finish = part.scheduled_at = part.hold_until = None
    part.placement = {}
    part.save(
        update_fields=[
            "status",
            "assigned_node",
            "progress_pct",
            "started_at",
            "planned_start",
            "planned_finish",
            "scheduled_at",
            "hold_until",
            "placement",
            "updated_at",
        ]
    )
    _record(job=part.job, part=part, before=before, after=Status.VALIDATED, by=by, reason=reason)
    job_sync_status(job=part.job, by=by, reason=reason)
    broadcast_on_commit(
        job_group(part.job_id),
        {"type": "part.rescheduled", "job": part.job_id, "part": part.pk, "reason": reason},
    )


def _pull_back_dependents(pending: list[Part]) -> list[Part]:
    """Plans that hang on parts about to be placed again go back with them, so the scheduler
    keeps them consistent in the same run: a job's placed assembly (it starts when the others
    finish) and the placed, unstarted parts of a batch (they run together on one node)."""
    moving_jobs = {p.job_id for p in pending if p.process != ASSEMBLY}
    moving_batches = {(p.job_id, p.batch_group) for p in pending if p.batch_group}
    if not moving_jobs:
        return []
    placed = (
        Part.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(job_id__in=moving_jobs, status__in=[Status.SCHEDULED, Status.ASSIGNED])
        .filter(Q(process=ASSEMBLY) | ~Q(batch_group=""))
        .select_related("job")
        .prefetch_related("declined_nodes")
    )
    pulled = []
    for part in placed:
        if (part.job_id, part.batch_group) in moving_batches:
            reason = f"re-planned with its batch '{part.batch_group}', part of which moved"
        elif part.process == ASSEMBLY:
            reason = "re-planned: a part it waits for moved"
        else:
            continue
        _unplace(part, reason=reason, by=None)
        pulled.append(part)
    return pulled


def part_has_other_nodes(part: Part) -> bool:
    """Whether a working node that has not declined the part could make it."""
    spec = PartSpec(
        name=part.name,
        material=part.material,
        process=part.process,
        quantity=part.quantity,
        size_mm=(part.size_x_mm, part.size_y_mm, part.size_z_mm),
    )
    declined = part.declined_nodes.values_list("pk", flat=True)
    return any(
        node_fit_problem(node, spec) is None for node in working_nodes().exclude(pk__in=declined)
    )


def parts_heal(*, now: datetime | None = None) -> list[int]:
    """Finds unfinished parts whose node went to maintenance, was decommissioned or lost its
    approval, or fell silent (all of a silent node's parts, started or not), and reschedules
    them. Returns their ids. A silent node is left idle and reported silent (node_went_silent:
    maintenance marks it offline); the scheduler gives it work again once it reports."""
    now = now or timezone.now()
    moved: list[int] = []
    working = set(working_nodes().values_list("pk", flat=True))
    active = list(
        Part.objects.filter(
            status__in=ACTIVE_PART_STATUSES, assigned_node__isnull=False
        ).select_related("assigned_node")
    )
    nodes = {p.assigned_node.pk: p.assigned_node for p in active if p.assigned_node is not None}
    silent = _silent_nodes(node_ids=sorted(nodes), now=now)
    confirm_within = timedelta(hours=settings.JOBS_CONFIRM_HOURS)
    for part in active:
        node = part.assigned_node
        assert node is not None
        if _unconfirmed_too_long(part, now=now, within=confirm_within):
            part_reschedule(
                part=part,
                reason=f"{node.name}'s vendor did not confirm within "
                f"{settings.JOBS_CONFIRM_HOURS:g} h",
                exclude_node=True,
            )
            moved.append(part.pk)
            continue
        if node.pk not in working:
            reason = f"node {node.name} is {node.get_status_display().lower()}"
            if not node.is_approved:
                reason = f"node {node.name} is no longer approved"
        elif node.pk in silent:
            reason = f"node {node.name} has sent nothing for {_minutes(silent[node.pk], now)} min"
        else:
            continue
        part_reschedule(part=part, reason=reason)
        moved.append(part.pk)
    for node_id, since in silent.items():
        if node_id in working:
            _node_silent(node=nodes[node_id], since=since, now=now)
    return moved


def _node_silent(*, node: FabricationNode, since: datetime, now: datetime) -> None:
    """The silent node's work has moved: it is idle, and maintenance hears of it."""
    S = FabricationNode.Status
    _node_moves(node, [S.ASSIGNED, S.IDLE], f"Silent for {_minutes(since, now)} min, work moved")
    node_id = node.pk
    transaction.on_commit(
        lambda: node_went_silent.send(sender=FabricationNode, node_id=node_id, silent_since=since)
    )


def _unconfirmed_too_long(part: Part, *, now: datetime, within: timedelta) -> bool:
    node = part.assigned_node
    if part.status != Status.SCHEDULED or node is None or not node.requires_confirmation:
        return False
    return part.scheduled_at is not None and now - part.scheduled_at > within


# --- Vendor confirmation (nodes whose vendor accepts each part) --------------------------------


def _vendor_part(*, by: User, part: Part) -> Part:
    part = (
        Part.objects.select_for_update(of=("self",))
        .select_related("job", "assigned_node__vendor")
        .get(pk=part.pk)
    )
    if part.assigned_node is None or not node_can_manage(user=by, node=part.assigned_node):
        raise PermissionDenied("Only the vendor of the part's node may accept or decline it.")
    return part


@transaction.atomic
def part_accept(*, by: User, part: Part) -> Part:
    """The vendor commits its node to the part (SCHEDULED -> ASSIGNED, recorded as theirs)."""
    part = _vendor_part(by=by, part=part)
    if part.status != Status.SCHEDULED:
        raise Conflict(
            f"Only a scheduled part can be accepted; this one is "
            f"{part.get_status_display().lower()}.",
            details={"status": part.status},
        )
    assert part.assigned_node is not None
    return part_transition(
        part=part, to=Status.ASSIGNED, by=by, reason=f"Accepted for {part.assigned_node.name}"
    )


@transaction.atomic
def part_decline(*, by: User, part: Part, reason: str) -> Part:
    """The vendor will not make the part: it goes back to the scheduler, which never offers
    it to this node again, and the designer is told."""
    part = _vendor_part(by=by, part=part)
    if not reason.strip():
        raise ValidationError({"reason": ["Say why you decline, for the designer."]})
    if part.status not in (Status.SCHEDULED, Status.ASSIGNED):
        raise Conflict(
            f"A {part.get_status_display().lower()} part cannot be declined.",
            details={"status": part.status},
        )
    assert part.assigned_node is not None
    part = part_reschedule(
        part=part,
        reason=f"declined by {part.assigned_node.name}'s vendor: {reason.strip()}",
        by=by,
        exclude_node=True,
    )
    transaction.on_commit(_queue_scheduling)
    return part


# --- Execution (node agents, with the node's device token) -------------------------------------


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
        .select_related("job")
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
    machine makes one part at a time); then the first part not yet started may start, unless
    the plan holds it back (cheaper, greener hours; the site's power cap) until `hold_until`,
    less JOBS_START_TOLERANCE_MINUTES; the parts after it wait for it. A part that is not held
    may start before its planned start: that plan only said when the node would be free, and
    a machine that finished early should not stand idle."""
    now = now or timezone.now()
    tolerance = timedelta(minutes=settings.JOBS_START_TOLERANCE_MINUTES)
    released: dict[int, Release] = {}
    first: Part | None = None
    running = next((p for p in parts if p.status == Status.IN_PROGRESS), None)
    for part in parts:
        if part.status == Status.IN_PROGRESS:
            released[part.pk] = Release(ready=True)
        elif running is not None:  # a machine makes one part at a time
            released[part.pk] = Release(
                ready=False, waits_for=f"part {running.pk} ({running.name}) is under way"
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


def _node_moves(node: FabricationNode, targets: Sequence[str], reason: str) -> None:
    """Walks the node's lifecycle to the first reachable target (platform moves)."""
    for target in targets:
        node.refresh_from_db(fields=["status"])
        if node.status == target:
            continue
        if node_can_transition(node.status, target):
            node_transition(node=node, to=target, by=None, reason=reason)


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


# --- Templates -----------------------------------------------------------------------------------

TEMPLATE_PARAMETERS = {"scale": (0.01, 100.0, 1.0), "quantity": (1, 10000, 1)}


def _template_parameters(raw: Any) -> dict[str, dict[str, float]]:
    """{"scale": {"default", "min", "max"}, "quantity": {...}}: the two parameters a template
    has (sizes scale, quantities multiply); bounds must lie in the platform's limits."""
    if not isinstance(raw, dict):
        raise ValidationError({"parameters": ["An object of parameters."]})
    out: dict[str, dict[str, float]] = {}
    for name, spec in raw.items():
        if name not in TEMPLATE_PARAMETERS:
            raise ValidationError(
                {
                    "parameters": [
                        f"Unknown parameter {name!r}: use {', '.join(TEMPLATE_PARAMETERS)}."
                    ]
                }
            )
        low, high, default = TEMPLATE_PARAMETERS[name]
        try:
            lo = float(spec.get("min", low))
            hi = float(spec.get("max", high))
            value = float(spec.get("default", default))
        except (AttributeError, TypeError, ValueError):
            raise ValidationError({"parameters": [f"{name}: numbers min, max, default."]}) from None
        if not low <= lo <= value <= hi <= high:
            raise ValidationError(
                {"parameters": [f"{name}: need {low} <= min <= default <= max <= {high}."]}
            )
        out[name] = {"min": lo, "max": hi, "default": value}
    return out


def template_parameters_for(*, max_scale: float, max_quantity: int) -> dict[str, Any]:
    """The parameters a template gets from "largest scale" and "largest quantity multiplier":
    sizes from half (or the largest, if smaller) up to that scale, quantities from 1 up."""
    return {
        "scale": {"min": min(0.5, max_scale), "max": max_scale, "default": 1.0},
        "quantity": {"min": 1, "max": max_quantity, "default": 1},
    }


def template_spec_check(
    *, parts: Sequence[dict[str, Any]], parameters: Any
) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """A template's parts and parameters checked as `template_create` checks them, for a part
    set kept outside a JobTemplate (a marketplace listing's version): no CAD uploads, every
    bad part reported by index, the parameters within the platform's limits, and no part
    that the largest scale or quantity would push past what a job can hold."""
    errors: dict[str, list[str]] = {}
    cleaned_parameters: dict[str, dict[str, float]] = {}
    try:
        cleaned_parameters = _template_parameters(parameters or {})
    except ValidationError as exc:
        errors.update(exc.message_dict)
    cleaned_parts: list[dict[str, Any]] = []
    try:
        cleaned_parts = _part_specs(
            by=None, parts=[{k: v for k, v in p.items() if k != "cad_file"} for p in parts]
        )
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if not errors:
        errors = _template_reach_problems(cleaned_parts, cleaned_parameters)
    if errors:
        raise ValidationError(errors)
    return cleaned_parts, cleaned_parameters


def _template_reach_problems(
    parts: list[dict[str, Any]], parameters: dict[str, dict[str, float]]
) -> dict[str, list[str]]:
    """Where the largest scale or quantity a template offers makes a part no job can hold
    (more than a part's quantity limit, larger than any machine), by part index."""
    most_scale = parameters.get("scale", {}).get("max", 1.0)
    most_sets = parameters.get("quantity", {}).get("max", 1.0)
    quantity_limit = 10000  # Part.quantity's validator
    problems: dict[str, list[str]] = {}
    for index, part in enumerate(parts):
        reasons = []
        if int(part.get("quantity", 1)) * most_sets > quantity_limit:
            reasons.append(
                f"quantity: {part.get('quantity', 1)} x the largest quantity multiplier "
                f"{most_sets:g} is over {quantity_limit}; lower one of them."
            )
        largest = max(float(part[axis]) for axis in ("size_x_mm", "size_y_mm", "size_z_mm"))
        if largest * most_scale > MAX_SIZE_MM:
            reasons.append(
                f"size: {largest:g} mm at the largest scale {most_scale:g} is over "
                f"{MAX_SIZE_MM:g} mm; lower one of them."
            )
        if reasons:
            problems[f"parts[{index}]"] = reasons
    return problems


@transaction.atomic
def template_create(
    *,
    by: User,
    name: str,
    parts: Sequence[dict[str, Any]],
    parameters: Any = None,
    description: str = "",
    organization: Organization | None = None,
) -> JobTemplate:
    if scope_for(by, Action.JOB_CREATE) is None:
        raise PermissionDenied("Your role does not allow creating jobs or templates.")
    if not name.strip():
        raise ValidationError({"name": ["Give the template a name."]})
    org = _organization_for(by=by, organization=organization)
    cleaned = _part_specs(by=by, parts=parts)
    stored = []
    for part in cleaned:
        cad = part.pop("cad_file", None)
        stored.append({**part, **({"cad_file": cad.pk} if cad else {})})
    return JobTemplate.objects.create(
        owner=by,
        organization=org,
        name=name.strip(),
        description=description,
        parameters=_template_parameters(parameters or {}),
        parts=stored,
    )


@transaction.atomic
def template_from_job(
    *,
    by: User,
    job: Job,
    name: str,
    description: str = "",
    max_scale: float = 2.0,
    max_quantity: int = 100,
) -> JobTemplate:
    """Saves a job's parts as a template of its organization, with scale 0.5-`max_scale`
    and quantity 1-`max_quantity`. CAD files are kept where they are the caller's own."""
    parts: list[dict[str, Any]] = []
    first_lot: dict[tuple[Any, ...], dict[str, Any]] = {}
    for part in job.parts.select_related("cad_file").order_by("id"):
        fields = {f: getattr(part, f) for f in PART_FIELDS}
        if part.cad_file is not None and part.cad_file.owner_id == by.pk:
            fields["cad_file"] = part.cad_file.pk
        if part.lots > 1:  # lots of one part become that part again
            key = (*(fields[f] for f in PART_FIELDS if f != "quantity"), part.lots)
            if key in first_lot:
                first_lot[key]["quantity"] += part.quantity
                continue
            first_lot[key] = fields
        parts.append(fields)
    return template_create(
        by=by,
        name=name,
        description=description or f"From job #{job.pk} {job.title}",
        parts=parts,
        parameters=template_parameters_for(max_scale=max_scale, max_quantity=max_quantity),
        organization=job.organization,
    )


@transaction.atomic
def template_delete(*, by: User, template: JobTemplate) -> None:
    if not (scope_for(by, Action.JOB_CREATE) == Scope.ALL or template.owner_id == by.pk):
        raise PermissionDenied("Only the template's author or an admin may delete it.")
    template.delete()


def template_parts(*, template: JobTemplate, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The template's parts with `values` applied (defaults for what is not given)."""
    chosen: dict[str, float] = {}
    for name, spec in template.parameters.items():
        raw = values.get(name, spec["default"])
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValidationError({f"parameters.{name}": ["A number."]}) from None
        if not spec["min"] <= value <= spec["max"]:
            raise ValidationError(
                {f"parameters.{name}": [f"Between {spec['min']:g} and {spec['max']:g}."]}
            )
        chosen[name] = value
    unknown = set(values) - set(template.parameters)
    if unknown:
        raise ValidationError(
            {"parameters": [f"This template has no parameter {', '.join(sorted(unknown))}."]}
        )
    scale, times = chosen.get("scale", 1.0), int(chosen.get("quantity", 1))
    parts = []
    for spec in template.parts:
        part = dict(spec)
        for axis in ("size_x_mm", "size_y_mm", "size_z_mm"):
            if axis in part:
                part[axis] = round(float(part[axis]) * scale, 3)
        if scale != 1.0:
            part.pop("cad_file", None)  # the stored model no longer matches the scaled size
        part["quantity"] = int(part.get("quantity", 1)) * times
        parts.append(part)
    return parts


def template_instantiate(
    *, template: JobTemplate, by: User, values: dict[str, Any], **job: Any
) -> Job:
    """A job from the template, in the caller's organization, validated and scheduled like
    any other."""
    parts = template_parts(template=template, values=values)
    job.setdefault("title", template.name)
    created = job_submit(by=by, parts=parts, **job)
    created.template = template
    created.save(update_fields=["template", "updated_at"])
    return created

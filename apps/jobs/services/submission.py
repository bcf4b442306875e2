"""Submitting a job: parts checked against the catalogue and the fleet, batches checked, the
estimate (cost from the parts and the fleet, time from a dry run of the scheduler), lots,
cancellation and priority."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.exceptions import Conflict
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
from apps.jobs.models import CadFile, Job, Part, Status
from apps.jobs.scheduler import (
    PartTask,
    hours_until,
)
from apps.jobs.selectors import job_can_change, schedulable_nodes
from apps.jobs.services.scheduling import _plan
from apps.jobs.services.status import (
    ACTIVE_PART_STATUSES,
    _norm,
    _queue_scheduling,
    _record,
    job_sync_status,
    part_transition,
)
from apps.users.models import Organization, User
from apps.users.roles import Action, Scope, scope_for
from apps.users.selectors import user_organization_ids
from apps.vendors import catalog
from apps.vendors.models import FabricationNode

PART_FIELDS = (
    "name",
    "material",
    "colour_hex",
    "process",
    "quantity",
    "size_x_mm",
    "size_y_mm",
    "size_z_mm",
    "complexity",
    "batch_group",
)


MAX_PARTS = 200


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
        colour = part.get("colour_hex")
        if isinstance(colour, str):  # "#E11D48", "e11d48": one spelling
            colour = colour.strip().lower()
            part["colour_hex"] = colour if colour.startswith("#") or not colour else f"#{colour}"
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
        timing=timing,
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
    alone, in parallel on idle machines). The estimate refuses what submission would."""
    deadline, timing = job["deadline"], job["timing"]
    if deadline is not None and deadline <= now:
        raise ValidationError({"deadline": ["The deadline must be in the future."]})
    if timing not in Job.Timing.values:
        raise ValidationError({"timing": [f"One of {', '.join(Job.Timing.values)}."]})
    if timing != Job.Timing.ASAP and deadline is None:
        raise ValidationError(
            {"timing": ["Give a deadline: the platform moves the job only as far as it allows."]}
        )
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

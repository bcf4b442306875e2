"""Putting a purchase to use: a template becomes a job in one click, a playbook is attached
to parts, bought capacity hours are booked for a job (whose parts then run only on the
seller's nodes). Only members of the purchase's organization, and only while it is usable
(paid, not wholly refunded). Buyers always get the listing's latest version."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from apps.core.background import task_enqueue
from apps.core.exceptions import Conflict
from apps.jobs.estimates import PartSpec, node_fit_problem
from apps.jobs.models import Job, JobTemplate, Part, Status
from apps.jobs.services import job_submit, part_reschedule, template_parts
from apps.marketplace.models import Listing, Purchase, PurchaseUse
from apps.marketplace.selectors.uses import (
    FINAL,
    capacity_booking,
    capacity_hours_left,
    capacity_nodes,
    job_hours,
    latest_version,
    playbook_by_part,
)
from apps.users.models import User
from apps.users.roles import Action, scope_for
from apps.vendors import catalog

STARTED = (Status.IN_PROGRESS, Status.COMPLETED, Status.FAILED)
KIND_USE = {
    Listing.Kind.TEMPLATE: "create a job from",
    Listing.Kind.PLAYBOOK: "attach",
    Listing.Kind.CAPACITY: "book hours of",
}


def _queue_scheduling() -> None:
    from apps.jobs.tasks import parts_schedule_task

    task_enqueue(parts_schedule_task)  # the beat runs it every minute anyway


def _check_user(*, by: User, purchase: Purchase) -> None:
    """Members of the purchase's organization whose role may buy (designers, engineers,
    vendors) may use it; viewers and operators only look."""
    if not purchase.organization.memberships.filter(user=by).exists():
        raise PermissionDenied(
            f"Only members of {purchase.organization.name} may use its purchases."
        )
    if scope_for(by, Action.MARKET_BUY) is None:
        raise PermissionDenied("Your role may look at purchases but not use them.")


def _usable(*, by: User, purchase: Purchase, kind: str) -> Purchase:
    """The purchase, locked, after checking who uses it, that it is of `kind` and usable."""
    _check_user(by=by, purchase=purchase)
    purchase = Purchase.objects.select_for_update().select_related("listing").get(pk=purchase.pk)
    listing = purchase.listing
    if listing.kind != kind:
        raise ValidationError(
            f"“{listing.title}” is a {listing.get_kind_display().lower()}: you can "
            f"{KIND_USE[Listing.Kind(listing.kind)]} it, not "
            f"{KIND_USE[Listing.Kind(kind)]} it."
        )
    if not purchase.is_active:
        raise Conflict(
            f"This purchase is {purchase.get_status_display().lower()}: only a paid purchase "
            "can be used.",
            details={"status": purchase.status},
        )
    return purchase


# --- Templates -----------------------------------------------------------------------------------


@transaction.atomic
def purchase_instantiate(
    *, by: User, purchase: Purchase, values: dict[str, Any], **job: Any
) -> Job:
    """A job in the purchase's organization from the listing's latest version, with `values`
    for its parameters (scale, quantity), validated and scheduled like any other job. `job`:
    title (default: the listing's), priority, deadline, timing, latitude, longitude."""
    purchase = _usable(by=by, purchase=purchase, kind=Listing.Kind.TEMPLATE)
    if scope_for(by, Action.JOB_CREATE) is None:
        raise PermissionDenied(
            "Your role does not allow creating jobs: a designer or engineer of "
            f"{purchase.organization.name} can create a job from this template."
        )
    listing = purchase.listing
    version = latest_version(listing=listing)
    content = version.content or {}
    template = JobTemplate(
        name=listing.title,
        parameters=content.get("parameters") or {},
        parts=[
            {k: v for k, v in part.items() if k != "cad_file"}  # the seller's file, not ours
            for part in content.get("parts") or []
        ],
    )
    parts = template_parts(template=template, values=values or {})
    job["title"] = (job.get("title") or "").strip() or listing.title
    created = job_submit(
        by=by,
        parts=parts,
        organization=purchase.organization,
        metadata={
            "marketplace": {
                "purchase": purchase.pk,
                "listing": listing.pk,
                "version": version.number,
            }
        },
        **job,
    )
    PurchaseUse.objects.create(purchase=purchase, job=created, created_by=by)
    return created


# --- Playbooks -----------------------------------------------------------------------------------


def _playbook_fit_problem(*, part: Part, content: dict[str, Any], title: str) -> str | None:
    """Why the part's material or process is not what the playbook is written for (compared
    as catalogue codes, so a playbook written for "Laser cutting" fits laser_cutting parts)."""
    materials = [str(m).lower() for m in content.get("materials") or []]
    processes = [str(p).lower() for p in content.get("processes") or []]
    process = catalog.match_key(part.process, kind="process")
    if processes and process not in {catalog.match_key(p, kind="process") for p in processes}:
        return (
            f"Part {part.name} is made by {part.process}; “{title}” is written for "
            f"{', '.join(processes)}."
        )
    material = catalog.match_key(part.material, kind="material")
    if materials and material not in {catalog.match_key(m, kind="material") for m in materials}:
        return (
            f"Part {part.name} is {part.material_label}; “{title}” is written for "
            f"{', '.join(materials)}."
        )
    return None


def _attach(*, by: User, purchase: Purchase, part: Part, content: dict[str, Any]) -> PurchaseUse:
    listing = purchase.listing
    part = Part.objects.select_for_update(of=("self",)).select_related("job").get(pk=part.pk)
    if part.job.organization_id != purchase.organization_id:
        raise ValidationError(f"Part {part.pk} is not in a job of {purchase.organization.name}.")
    if part.status in FINAL or part.job.is_final:
        raise ValidationError(
            f"Part {part.name} is {part.get_status_display().lower()}: a playbook is for parts "
            "still to be made."
        )
    existing = playbook_by_part(part_ids=[part.pk]).get(part.pk)
    if existing is not None:
        raise Conflict(
            f"Part {part.name} already follows the playbook “{existing.purchase.listing.title}”; "
            "detach it first to attach another.",
            details={"use": existing.pk, "listing": existing.purchase.listing_id},
        )
    problem = _playbook_fit_problem(part=part, content=content, title=listing.title)
    if problem:
        raise ValidationError(problem)
    try:
        with transaction.atomic():
            return PurchaseUse.objects.create(
                purchase=purchase, job=part.job, part=part, created_by=by
            )
    except IntegrityError:  # attached by someone else a moment ago
        raise Conflict(f"Part {part.name} already follows a playbook.") from None


@transaction.atomic
def playbook_attach(*, by: User, purchase: Purchase, part: Part) -> PurchaseUse:
    """The part (of an open job of the purchase's organization) follows the playbook. One
    playbook per part; its material and process must be ones the playbook is written for."""
    purchase = _usable(by=by, purchase=purchase, kind=Listing.Kind.PLAYBOOK)
    content = latest_version(listing=purchase.listing).content or {}
    return _attach(by=by, purchase=purchase, part=part, content=content)


@transaction.atomic
def playbook_attach_parts(
    *, by: User, purchase: Purchase, parts: Sequence[Part | int]
) -> tuple[list[PurchaseUse], dict[int, list[str]]]:
    """Attaches the playbook to each part (a Part or an id) that can take it; returns the new
    uses and, by index in `parts`, why the others could not."""
    purchase = _usable(by=by, purchase=purchase, kind=Listing.Kind.PLAYBOOK)
    if not parts:
        raise ValidationError({"parts": ["Choose at least one part."]})
    content = latest_version(listing=purchase.listing).content or {}
    ids = [p if isinstance(p, int) else p.pk for p in parts]
    found = {
        p.pk: p
        for p in Part.objects.filter(pk__in=ids, job__organization_id=purchase.organization_id)
    }
    attached: list[PurchaseUse] = []
    errors: dict[int, list[str]] = {}
    seen: set[int] = set()
    for index, part_id in enumerate(ids):
        part = found.get(part_id)
        if part is None:
            errors[index] = [f"No part {part_id} in a job of {purchase.organization.name}."]
            continue
        if part_id in seen:
            errors[index] = [f"Part {part.name} is listed twice."]
            continue
        seen.add(part_id)
        try:
            with transaction.atomic():
                attached.append(_attach(by=by, purchase=purchase, part=part, content=content))
        except (ValidationError, Conflict) as exc:
            errors[index] = (
                list(exc.messages) if isinstance(exc, ValidationError) else [exc.message]
            )
    return attached, errors


@transaction.atomic
def playbook_detach(*, by: User, use: PurchaseUse) -> None:
    """The part no longer follows the playbook (only before it is finished)."""
    if use.part_id is None:
        raise ValidationError("This use is not a playbook attached to a part.")
    _check_user(by=by, purchase=use.purchase)
    part = Part.objects.get(pk=use.part_id)
    if part.status in FINAL:
        raise Conflict(
            f"Part {part.name} is {part.get_status_display().lower()}: the playbook it followed "
            "stays on record."
        )
    use.delete()


# --- Capacity ------------------------------------------------------------------------------------


@transaction.atomic
def capacity_book(*, by: User, purchase: Purchase, job: Job) -> PurchaseUse:
    """Runs the job (open, of the purchase's organization, no part started) on the seller's
    approved nodes of the listing's node kind, using as many of the bought hours as its parts
    are estimated to take. Parts already placed elsewhere go back to the scheduler."""
    purchase = _usable(by=by, purchase=purchase, kind=Listing.Kind.CAPACITY)
    listing = purchase.listing
    job = Job.objects.select_for_update().get(pk=job.pk)
    if job.organization_id != purchase.organization_id:
        raise ValidationError(
            {"job": [f"Job {job.pk} is not a job of {purchase.organization.name}."]}
        )
    if job.is_final:
        raise ValidationError(
            {"job": [f"Job {job.pk} is {job.get_status_display().lower()}: nothing to book."]}
        )
    parts = list(job.parts.exclude(status__in=FINAL).select_related("assigned_node"))
    started = [p.name for p in parts if p.status in STARTED]
    if started:
        raise Conflict(
            f"Job {job.pk} has parts already started ({', '.join(started)}): book capacity "
            "before work begins."
        )
    booked = capacity_booking(job=job)
    if booked is not None:
        raise Conflict(
            f"Job {job.pk} is already booked on “{booked.purchase.listing.title}”; release "
            "that booking first.",
            details={"use": booked.pk},
        )
    nodes = list(capacity_nodes(listing=listing))
    unfit = [
        p.name for p in parts if not any(node_fit_problem(node, _spec(p)) is None for node in nodes)
    ]
    if unfit:
        raise ValidationError(
            {
                "job": [
                    f"{listing.seller.name}'s {listing.node_kind.replace('_', ' ')} nodes cannot "
                    f"make: {', '.join(unfit)}."
                ]
            }
        )
    hours = job_hours(job=job)
    left = capacity_hours_left(purchase=purchase)
    if hours > left:
        raise ValidationError(
            {
                "job": [
                    f"Job {job.pk} needs {hours} h; this purchase has {left} h of "
                    f"{purchase.quantity} h left."
                ]
            }
        )
    use = PurchaseUse.objects.create(purchase=purchase, job=job, hours=hours, created_by=by)
    seller_nodes = {node.pk for node in nodes}
    moved = False
    for part in parts:
        placed = part.status in (Status.SCHEDULED, Status.ASSIGNED)
        if placed and part.assigned_node_id not in seller_nodes:
            part_reschedule(part=part, reason=f"booked on {listing.seller.name}'s capacity", by=by)
            moved = True
    if moved or any(p.status == Status.VALIDATED for p in parts):
        transaction.on_commit(_queue_scheduling)
    return use


def _spec(part: Part) -> PartSpec:
    return PartSpec(
        name=part.name,
        material=part.material,
        process=part.process,
        quantity=part.quantity,
        size_mm=(part.size_x_mm, part.size_y_mm, part.size_z_mm),
    )


@transaction.atomic
def capacity_release(*, by: User, use: PurchaseUse) -> None:
    """Gives the booked hours back before the job's parts start (they stay where they are
    placed; the scheduler may use any node for them from now on)."""
    if use.part_id is not None or use.purchase.listing.kind != Listing.Kind.CAPACITY:
        raise ValidationError("This use is not a capacity booking.")
    _check_user(by=by, purchase=use.purchase)
    started = use.job.parts.filter(status__in=STARTED).exists()
    if started:
        raise Conflict(f"Job {use.job_id} has started on the booked capacity: the booking stays.")
    use.delete()

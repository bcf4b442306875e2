"""Vendor confirmation: a node whose vendor accepts each part before it is made."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.core.exceptions import Conflict
from apps.jobs.models import Part, Status
from apps.jobs.services.scheduling import part_reschedule
from apps.jobs.services.status import _queue_scheduling, part_transition
from apps.users.models import User
from apps.vendors.selectors import node_can_manage


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

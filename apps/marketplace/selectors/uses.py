"""Reads about what purchases are used for: the caller's organizations' purchases and uses,
the jobs and parts a purchase may be put to, capacity hours left, what a job got from the
marketplace (its page's panel) and the nodes booked capacity limits parts to."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import ROUND_CEILING, Decimal
from typing import Any

from django.db.models import QuerySet, Sum
from django.shortcuts import get_object_or_404

from apps.jobs.models import Job, Part, Status
from apps.marketplace.models import Listing, ListingVersion, Purchase, PurchaseUse
from apps.users.models import Organization, User
from apps.vendors.models import FabricationNode

FINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)
# a capacity booking whose job ended this way gave its hours back
HOURS_RETURNED = (Status.FAILED, Status.CANCELLED)
ACTIVE_PURCHASE = (Purchase.Status.PAID, Purchase.Status.PARTIALLY_REFUNDED)
CENT = Decimal("0.01")


def purchase_use_list(*, purchase: Purchase) -> QuerySet[PurchaseUse]:
    return purchase.uses.select_related("job", "part", "created_by").order_by("-created_at", "-id")


def use_get_for_user(*, user: User, pk: int) -> PurchaseUse:
    """A use of a purchase of the caller's organizations; 404 otherwise."""
    uses = PurchaseUse.objects.filter(purchase__organization__memberships__user=user)
    return get_object_or_404(
        uses.select_related("purchase__listing", "purchase__organization", "job", "part"), pk=pk
    )


def latest_version(*, listing: Listing) -> ListingVersion:
    """What buyers get: the listing's newest version."""
    version = listing.versions.order_by("-number").first()
    if version is None:  # a listing is created with version 1
        raise ListingVersion.DoesNotExist(f"{listing} has no version.")
    return version


def capacity_hours_used(*, purchase: Purchase) -> Decimal:
    """Hours of the purchase's bookings whose job did not fail or get cancelled."""
    used = (
        purchase.uses.exclude(job__status__in=HOURS_RETURNED).aggregate(total=Sum("hours"))["total"]
        or 0
    )
    return Decimal(used).quantize(CENT)


def capacity_hours_left(*, purchase: Purchase) -> Decimal:
    return Decimal(purchase.quantity) - capacity_hours_used(purchase=purchase)


def job_hours(*, job: Job) -> Decimal:
    """The estimated machine hours of the job's parts still to be made, rounded up to 0.01."""
    total = sum(
        float(part.estimates.get("duration_h", 0.0)) for part in job.parts.exclude(status__in=FINAL)
    )
    return Decimal(str(round(total, 6))).quantize(CENT, rounding=ROUND_CEILING)


def open_jobs(*, organization: Organization) -> QuerySet[Job]:
    """The organization's jobs that are not finished (completed, failed or cancelled)."""
    return (
        Job.objects.filter(organization=organization)
        .exclude(status__in=FINAL)
        .order_by("-created_at", "-id")
    )


def open_parts(*, organization: Organization, job_id: int | None = None) -> QuerySet[Part]:
    """Parts still to be made of the organization's open jobs (optionally one job's)."""
    parts = (
        Part.objects.filter(job__organization=organization)
        .exclude(status__in=FINAL)
        .exclude(job__status__in=FINAL)
        .select_related("job")
        .order_by("-job_id", "id")
    )
    return parts.filter(job_id=job_id) if job_id else parts


def playbook_by_part(*, part_ids: Sequence[int]) -> dict[int, PurchaseUse]:
    """{part id: its playbook use} for the parts that follow a playbook."""
    uses = PurchaseUse.objects.filter(part_id__in=part_ids).select_related("purchase__listing")
    return {use.part_id: use for use in uses if use.part_id is not None}


def capacity_booking(*, job: Job) -> PurchaseUse | None:
    """The job's booking on bought capacity, if it has one."""
    return (
        PurchaseUse.objects.filter(
            job=job, part__isnull=True, purchase__listing__kind=Listing.Kind.CAPACITY
        )
        .select_related("purchase__listing")
        .first()
    )


def capacity_nodes(*, listing: Listing) -> QuerySet[FabricationNode]:
    """The seller's approved nodes of the listing's kind: where booked hours run."""
    return FabricationNode.objects.filter(
        vendor_id=listing.seller_id,
        kind=listing.node_kind,
        approval=FabricationNode.Approval.APPROVED,
    )


def booked_nodes(*, parts: Sequence[Part]) -> dict[int, frozenset[int]]:
    """{part id: the seller's nodes} for parts of jobs booked on (still usable) bought
    capacity. The scheduler places those parts only there."""
    job_ids = {part.job_id for part in parts}
    if not job_ids:
        return {}
    bookings = PurchaseUse.objects.filter(
        job_id__in=job_ids,
        part__isnull=True,
        purchase__listing__kind=Listing.Kind.CAPACITY,
        purchase__status__in=ACTIVE_PURCHASE,
    ).values_list("job_id", "purchase__listing__seller_id", "purchase__listing__node_kind")
    wanted: dict[int, set[tuple[int, str]]] = defaultdict(set)
    for job_id, seller_id, node_kind in bookings:
        wanted[job_id].add((seller_id, node_kind))
    if not wanted:
        return {}
    pairs = set().union(*wanted.values())
    nodes: dict[tuple[int, str], set[int]] = defaultdict(set)
    for pk, vendor_id, kind in FabricationNode.objects.filter(
        approval=FabricationNode.Approval.APPROVED,
        vendor_id__in={seller for seller, _ in pairs},
        kind__in={kind for _, kind in pairs},
    ).values_list("pk", "vendor_id", "kind"):
        nodes[(vendor_id, kind)].add(pk)
    allowed: dict[int, frozenset[int]] = {}
    for job_id, keys in wanted.items():
        allowed_nodes = frozenset().union(*(nodes[key] for key in keys))
        for part in parts:
            if part.job_id == job_id:
                allowed[part.pk] = allowed_nodes
    return allowed


def _latest_versions(listing_ids: set[int]) -> dict[int, ListingVersion]:
    versions: dict[int, ListingVersion] = {}
    for version in ListingVersion.objects.filter(listing_id__in=listing_ids).order_by(
        "listing_id", "-number"
    ):
        versions.setdefault(version.listing_id, version)
    return versions


def job_marketplace(*, job: Job) -> dict[str, Any] | None:
    """What the marketplace supplied to `job`: the template listing it was made from (and the
    version), each part's playbook with its latest steps, its capacity booking. None when
    nothing."""
    uses = list(PurchaseUse.objects.filter(job=job).select_related("purchase__listing", "part"))
    if not uses:
        return None
    listing_ids = {use.purchase.listing_id for use in uses}
    versions = _latest_versions(listing_ids)
    origin = booking = None
    playbooks = []
    made_from = (job.metadata or {}).get("marketplace") or {}
    for use in uses:
        listing = use.purchase.listing
        latest = versions.get(listing.pk)
        if use.part_id is not None:
            playbooks.append(
                {
                    "use": use,
                    "part": use.part,
                    "listing": listing,
                    "version": latest,
                    "steps": (latest.content if latest else {}).get("steps", []),
                }
            )
        elif listing.kind == Listing.Kind.CAPACITY:
            booking = {"use": use, "listing": listing, "hours": use.hours}
        elif listing.kind == Listing.Kind.TEMPLATE:
            origin = {
                "use": use,
                "listing": listing,
                "version": made_from.get("version"),
                "latest": latest.number if latest else None,
            }
    playbooks.sort(key=lambda p: p["part"].pk)
    return {"origin": origin, "playbooks": playbooks, "booking": booking}


def part_playbook_steps(*, part_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """{part id: {"listing", "title", "version", "steps"}} for parts following a playbook:
    what a node agent shows the operator next to the part."""
    uses = playbook_by_part(part_ids=part_ids)
    if not uses:
        return {}
    listing_ids = {use.purchase.listing_id for use in uses.values()}
    versions = _latest_versions(listing_ids)
    out: dict[int, dict[str, Any]] = {}
    for part_id, use in uses.items():
        latest = versions.get(use.purchase.listing_id)
        out[part_id] = {
            "listing": use.purchase.listing_id,
            "title": use.purchase.listing.title,
            "version": latest.number if latest else None,
            "steps": (latest.content if latest else {}).get("steps", []),
        }
    return out

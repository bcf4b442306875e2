"""Reads of listings: browse and search, who may see or manage which listing, and the seller's
service figures (on time, defects, rating) from the real job history on its nodes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import (
    Avg,
    Case,
    Count,
    F,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import RowNumber
from django.shortcuts import get_object_or_404
from django.utils import timezone

from apps.jobs.models import Part, Status
from apps.marketplace.models import (
    Listing,
    ListingFacet,
    ListingImage,
    Purchase,
    PurchaseUse,
    Review,
)
from apps.users.models import Organization
from apps.users.roles import Action, Scope, scope_for

SORTS: dict[str, tuple[Any, ...]] = {
    "newest": ("-published_at", "-id"),
    "price": ("price", "id"),
    "-price": ("-price", "-id"),
    "rating": (F("rating_avg").desc(nulls_last=True), "-rating_count", "-id"),
    "popular": ("-sales_count", "-id"),
    "title": ("title", "id"),
}
SORT_LABELS = {
    "newest": "Newest",
    "price": "Price, low to high",
    "-price": "Price, high to low",
    "rating": "Best rated",
    "popular": "Most bought",
    "title": "Title",
}
ACTIVE_PURCHASE = [Purchase.Status.PAID, Purchase.Status.PARTIALLY_REFUNDED]
SLA_DAYS = 365


def member_organization_ids(*, user: Any) -> list[int]:
    return list(user.memberships.values_list("organization_id", flat=True))


def listing_can_manage(*, user: Any, listing: Listing) -> bool:
    """Whether `user` may edit, version, publish, retire the listing and change its images:
    its seller organization's sellers, and administrators (moderation)."""
    scope = scope_for(user, Action.MARKET_SELL)
    if scope == Scope.ALL:
        return True
    return scope is not None and listing.seller_id in member_organization_ids(user=user)


def _with_cards(qs: QuerySet[Listing]) -> QuerySet[Listing]:
    """The seller, the facets and only the first image of each listing, in three queries."""
    covers = ListingImage.objects.annotate(
        row=Window(RowNumber(), partition_by=[F("listing_id")], order_by=["position", "id"])
    ).filter(row=1)
    return qs.select_related("seller").prefetch_related(
        "facets", Prefetch("images", queryset=covers, to_attr="cover_images")
    )


def _facet_ids(facet: str, value: str) -> Any:
    return ListingFacet.objects.filter(facet=facet, value=value.strip().lower()).values(
        "listing_id"
    )


def listing_browse(
    *,
    user: Any,
    q: str = "",
    kind: str = "",
    material: str = "",
    process: str = "",
    tag: str = "",
    seller: int | None = None,
    currency: str = "",
    price_min: Decimal | None = None,
    price_max: Decimal | None = None,
    rating_min: Decimal | None = None,
    sort: str = "newest",
) -> QuerySet[Listing]:
    """Published listings matching every given filter. Facet filters go through `pk__in`
    subqueries, so a listing matching twice still comes once. Prices are compared in
    `currency` (the default currency when none is given): a price bound leaves out listings
    priced in another currency rather than comparing 10 EUR with 10 NGN."""
    if kind and kind not in Listing.Kind.values:
        raise ValidationError({"kind": [f"One of {', '.join(Listing.Kind.values)}."]})
    currency = currency.strip().upper()
    if currency and currency not in settings.MARKETPLACE_CURRENCIES:
        raise ValidationError(
            {"currency": [f"One of {', '.join(settings.MARKETPLACE_CURRENCIES)}."]}
        )
    if sort not in SORTS:
        raise ValidationError({"sort": [f"One of {', '.join(SORTS)}."]})
    qs = Listing.objects.filter(status=Listing.Status.PUBLISHED)
    for term in q.split():
        qs = qs.filter(
            Q(title__icontains=term)
            | Q(summary__icontains=term)
            | Q(description__icontains=term)
            | Q(
                pk__in=ListingFacet.objects.filter(
                    facet=ListingFacet.Facet.TAG, value__icontains=term.lower()
                ).values("listing_id")
            )
        )
    if kind:
        qs = qs.filter(kind=kind)
    for facet, value in (
        (ListingFacet.Facet.MATERIAL, material),
        (ListingFacet.Facet.PROCESS, process),
        (ListingFacet.Facet.TAG, tag),
    ):
        if value.strip():
            qs = qs.filter(pk__in=_facet_ids(facet, value))
    if seller is not None:
        qs = qs.filter(seller_id=seller)
    if currency:
        qs = qs.filter(currency=currency)
    elif price_min is not None or price_max is not None:
        qs = qs.filter(currency=settings.MARKETPLACE_DEFAULT_CURRENCY)
    if price_min is not None:
        qs = qs.filter(price__gte=price_min)
    if price_max is not None:
        qs = qs.filter(price__lte=price_max)
    if rating_min is not None:
        qs = qs.filter(rating_avg__gte=rating_min)
    order = SORTS[sort]
    if sort in ("price", "-price") and not currency:
        # prices in different currencies don't compare: the default currency's listings
        # first, then each other currency's, each by price
        qs = qs.annotate(
            other_currency=Case(
                When(currency=settings.MARKETPLACE_DEFAULT_CURRENCY, then=Value(0)),
                default=Value(1),
            )
        )
        order = ("other_currency", "currency", *order)
    return _with_cards(qs).order_by(*order)


def listing_facet_values(*, facet: str) -> list[str]:
    """The values of one facet across published listings (the browse filters' choices)."""
    return list(
        ListingFacet.objects.filter(facet=facet, listing__status=Listing.Status.PUBLISHED)
        .order_by("value")
        .values_list("value", flat=True)
        .distinct()
    )


def listing_visible(*, user: Any) -> QuerySet[Listing]:
    """Published listings for everyone signed in; drafts for the seller organization's sellers;
    retired ones for those and for organizations holding a usable purchase; all for admins."""
    scope = scope_for(user, Action.MARKET_SELL)
    qs = Listing.objects.all()
    if scope == Scope.ALL:
        return qs
    orgs = member_organization_ids(user=user)
    seen = Q(status=Listing.Status.PUBLISHED)
    if scope is not None:
        seen |= Q(seller_id__in=orgs)
    bought = Purchase.objects.filter(organization_id__in=orgs, status__in=ACTIVE_PURCHASE)
    seen |= Q(status=Listing.Status.RETIRED, pk__in=bought.values("listing_id"))
    return qs.filter(seen)


def listing_get_for_user(*, user: Any, pk: int) -> Listing:
    """The listing if `user` may see it; 404, not 403, so ids don't leak."""
    return get_object_or_404(listing_visible(user=user).select_related("seller"), pk=pk)


def listing_image_get_for_user(*, user: Any, pk: int) -> ListingImage:
    """An image of a listing the caller may see; 404 otherwise."""
    return get_object_or_404(
        ListingImage.objects.filter(listing__in=listing_visible(user=user)).select_related(
            "listing"
        ),
        pk=pk,
    )


def listing_manageable(*, user: Any, status: str = "") -> QuerySet[Listing]:
    """The caller's organizations' listings in any status (every listing for admins)."""
    scope = scope_for(user, Action.MARKET_SELL)
    if scope == Scope.ALL:
        qs = Listing.objects.all()
    elif scope is None:
        qs = Listing.objects.none()
    else:
        qs = Listing.objects.filter(seller_id__in=member_organization_ids(user=user))
    if status:
        if status not in Listing.Status.values:
            raise ValidationError({"status": [f"One of {', '.join(Listing.Status.values)}."]})
        qs = qs.filter(status=status)
    return _with_cards(qs).order_by("-updated_at", "-id")


def listing_manage_get(*, user: Any, pk: int) -> Listing:
    """The listing for its managers: 404 when the caller can't see it at all, 403 when they
    see it but may not change it."""
    listing = listing_get_for_user(user=user, pk=pk)
    if not listing_can_manage(user=user, listing=listing):
        raise PermissionDenied("Only the seller's team or an administrator may change a listing.")
    return listing


def listing_latest_version(*, listing: Listing) -> Any:
    return listing.versions.order_by("-number").first()


def seller_visible(*, user: Any, pk: int) -> Organization:
    """A seller's public page: organizations with a published listing, or the caller's own;
    404 otherwise."""
    qs = Organization.objects.filter(
        Q(listings__status=Listing.Status.PUBLISHED) | Q(pk__in=member_organization_ids(user=user))
    )
    if scope_for(user, Action.MARKET_SELL) == Scope.ALL:
        qs = Organization.objects.all()
    return get_object_or_404(qs.distinct(), pk=pk)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def seller_sla(*, organization: Organization, days: int = SLA_DAYS) -> dict[str, Any]:
    """On-time and defect rates of the parts the seller's nodes finished in the last `days`,
    and the rating over reviews of all its listings. A rate is None with nothing to measure."""
    since = timezone.now() - timedelta(days=days)
    parts = Part.objects.filter(assigned_node__vendor=organization, finished_at__gte=since)
    done = Q(status=Status.COMPLETED)
    with_deadline = done & Q(job__deadline__isnull=False)
    figures = parts.aggregate(
        completed=Count("id", filter=done),
        failed=Count("id", filter=Q(status=Status.FAILED)),
        with_deadline=Count("id", filter=with_deadline),
        on_time=Count("id", filter=with_deadline & Q(finished_at__lte=F("job__deadline"))),
    )
    ratings = Review.objects.filter(listing__seller=organization).aggregate(
        avg=Avg("stars"), count=Count("id")
    )
    avg = ratings["avg"]
    return {
        "on_time_rate": _rate(figures["on_time"], figures["with_deadline"]),
        "defect_rate": _rate(figures["failed"], figures["completed"] + figures["failed"]),
        "parts_done": figures["completed"],
        "parts_failed": figures["failed"],
        "parts_with_deadline": figures["with_deadline"],
        "avg_rating": round(float(avg), 2) if avg is not None else None,
        "rating_count": ratings["count"],
        "days": days,
    }


def listing_stats(*, listing: Listing) -> dict[str, Any]:
    """What the listing has been used for: jobs made with it (templates, playbooks) and how
    many completed, hours booked (capacity), and sales."""
    uses = PurchaseUse.objects.filter(purchase__listing=listing)
    jobs = uses.values("job_id").distinct()
    return {
        "sales_count": listing.sales_count,
        "jobs": jobs.count(),
        "jobs_completed": jobs.filter(job__status=Status.COMPLETED).count(),
        "hours": uses.aggregate(total=Sum("hours"))["total"] or Decimal("0.00"),
    }


def seller_published_count(*, organization: Organization) -> int:
    return Listing.objects.filter(seller=organization, status=Listing.Status.PUBLISHED).count()

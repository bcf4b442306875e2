"""Reads of reviews: a listing's reviews and what the caller may do with them, whether a
purchase may be reviewed yet (and why not), a seller's rating over all their listings."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.core.paginator import Paginator
from django.db.models import Avg, Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from apps.jobs.models import Status
from apps.marketplace.models import Listing, Purchase, PurchaseUse, Review
from apps.users.models import Organization
from apps.users.roles import Action, Scope, scope_for

REVIEWS_PER_PAGE = 10
NEEDS_A_COMPLETED_JOB = "Complete a job with it to review."


def review_list(*, listing: Listing) -> QuerySet[Review]:
    return Review.objects.filter(listing=listing).select_related("author", "replied_by")


def seller_reviews(*, organization: Organization, limit: int = REVIEWS_PER_PAGE) -> list[Review]:
    """The newest reviews of the seller's listings, with their listing and author."""
    return list(
        Review.objects.filter(listing__seller=organization)
        .select_related("listing", "author")
        .order_by("-created_at", "-id")[:limit]
    )


def review_get(*, pk: int) -> Review:
    return get_object_or_404(Review.objects.select_related("listing", "author"), pk=pk)


def review_blocked_reason(*, purchase: Purchase) -> str | None:
    """Why the purchase cannot be reviewed (yet), or None when it can: it must be paid (not
    wholly refunded) and a job with it must have completed (for a playbook: a part following
    it, or that part's job)."""
    if purchase.status == Purchase.Status.REFUNDED:
        return "A refunded purchase cannot be reviewed."
    if not purchase.is_active:
        return "Only a paid purchase can be reviewed."
    uses = PurchaseUse.objects.filter(purchase=purchase)
    if purchase.listing.kind == Listing.Kind.PLAYBOOK:
        done = uses.filter(
            Q(part__status=Status.COMPLETED) | Q(job__status=Status.COMPLETED), part__isnull=False
        )
    else:
        done = uses.filter(part__isnull=True, job__status=Status.COMPLETED)
    return None if done.exists() else NEEDS_A_COMPLETED_JOB


def review_can_reply(*, user: Any, listing: Listing) -> bool:
    """Sellers (members of the listing's seller organization who may sell) and
    administrators answer reviews."""
    scope = scope_for(user, Action.MARKET_SELL)
    if scope == Scope.ALL:
        return True
    return scope == Scope.OWN_ORG and listing.seller.memberships.filter(user=user).exists()


def rating_round(avg: Any) -> Decimal | None:
    """An average of stars to 2 places, half up."""
    return None if avg is None else Decimal(str(avg)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def seller_rating(*, organization: Organization) -> tuple[Decimal | None, int]:
    """(average stars, number of reviews) over every review of the seller's listings."""
    figures = Review.objects.filter(listing__seller=organization).aggregate(
        avg=Avg("stars"), count=Count("id")
    )
    return rating_round(figures["avg"]), figures["count"]


def review_context(*, user: Any, listing: Listing, page: int | str | None = 1) -> dict[str, Any]:
    """What templates/marketplace/_reviews.html needs: `reviews` (a page of the listing's
    reviews), `review_purchase` (the caller's purchase they may review now, or None),
    `can_reply` (whether the caller may answer reviews of this listing); also `own_review`
    (the caller's review, to edit), `review_blocked` (why the caller, a buyer, cannot review
    yet) and `review_query` (the page parameter's name)."""
    reviews = Paginator(review_list(listing=listing), REVIEWS_PER_PAGE).get_page(page)
    own_review = None
    review_purchase = None
    blocked = None
    if getattr(user, "is_authenticated", False):
        own_review = Review.objects.filter(listing=listing, author=user).first()
        bought = list(
            Purchase.objects.filter(listing=listing, buyer=user, review__isnull=True)
            .select_related("listing")
            .order_by("-created_at", "-id")
        )
        for purchase in bought:
            reason = review_blocked_reason(purchase=purchase)
            if reason is None:
                review_purchase = purchase
                break
            blocked = blocked or reason
        if review_purchase is not None or own_review is not None:
            blocked = None
    return {
        "reviews": reviews,
        "review_purchase": review_purchase,
        "can_reply": review_can_reply(user=user, listing=listing),
        "own_review": own_review,
        "review_blocked": blocked,
        "review_query": "reviews",
    }

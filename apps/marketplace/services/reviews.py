"""Reviews: one per purchase (1-5 stars and text) by its buyer once a job with it completed;
the seller's reply. Every change recomputes the listing's rating from the rows."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Avg, Count
from django.utils import timezone

from apps.core.exceptions import Conflict
from apps.marketplace.models import Listing, Purchase, Review
from apps.marketplace.selectors.reviews import (
    rating_round,
    review_blocked_reason,
    review_can_reply,
)
from apps.users.models import User
from apps.users.roles import Action, Scope, scope_for

MAX_TEXT = 4000


def _stars(stars: object) -> int:
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise ValidationError({"stars": ["A whole number of stars from 1 to 5."]})
    return stars


def _text(text: str, *, field: str = "text", required: bool = False) -> str:
    text = (text or "").strip()
    if len(text) > MAX_TEXT:
        raise ValidationError({field: [f"At most {MAX_TEXT} characters ({len(text)} given)."]})
    if required and not text:
        raise ValidationError({field: ["Write something."]})
    return text


@transaction.atomic
def listing_rating_refresh(*, listing: Listing) -> Listing:
    """The listing's average (2 places, half up) and count, from its reviews."""
    # locked first, so two reviews at once each count the other (read committed)
    listing = Listing.objects.select_for_update().get(pk=listing.pk)
    figures = Review.objects.filter(listing=listing).aggregate(avg=Avg("stars"), count=Count("id"))
    listing.rating_avg = rating_round(figures["avg"])
    listing.rating_count = figures["count"]
    listing.save(update_fields=["rating_avg", "rating_count", "updated_at"])
    return listing


@transaction.atomic
def review_create(*, by: User, purchase: Purchase, stars: int, text: str = "") -> Review:
    """The buyer reviews what they bought, once a job with it completed."""
    purchase = Purchase.objects.select_for_update().select_related("listing").get(pk=purchase.pk)
    if purchase.buyer_id != by.pk:
        raise PermissionDenied("Only the buyer of this purchase may review it.")
    if Review.objects.filter(purchase=purchase).exists():
        raise Conflict("You have already reviewed this purchase; edit your review instead.")
    blocked = review_blocked_reason(purchase=purchase)
    if blocked:
        raise PermissionDenied(blocked)
    stars = _stars(stars)
    text = _text(text)
    try:
        with transaction.atomic():
            review = Review.objects.create(
                purchase=purchase, listing=purchase.listing, author=by, stars=stars, text=text
            )
    except IntegrityError:  # a second request a moment earlier
        raise Conflict("You have already reviewed this purchase.") from None
    listing_rating_refresh(listing=purchase.listing)
    return review


@transaction.atomic
def review_update(*, by: User, review: Review, stars: int, text: str) -> Review:
    if review.author_id != by.pk:
        raise PermissionDenied("Only the review's author may edit it.")
    review.stars = _stars(stars)
    review.text = _text(text)
    review.save(update_fields=["stars", "text", "updated_at"])
    listing_rating_refresh(listing=review.listing)
    return review


@transaction.atomic
def review_delete(*, by: User, review: Review) -> None:
    """The author withdraws it, or an administrator removes it."""
    if review.author_id != by.pk and scope_for(by, Action.MARKET_SELL) != Scope.ALL:
        raise PermissionDenied("Only the review's author or an administrator may delete it.")
    listing = review.listing
    review.delete()
    listing_rating_refresh(listing=listing)


@transaction.atomic
def review_reply(*, by: User, review: Review, text: str) -> Review:
    """The seller answers (one reply; writing again replaces it)."""
    if not review_can_reply(user=by, listing=review.listing):
        raise PermissionDenied("Only the seller of this listing may reply to its reviews.")
    review.reply = _text(text, field="text", required=True)
    review.replied_by = by
    review.replied_at = timezone.now()
    review.save(update_fields=["reply", "replied_by", "replied_at", "updated_at"])
    return review

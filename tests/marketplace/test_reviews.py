"""Reviews: only the buyer, only after a job with the purchase completed, one per purchase;
the seller replies; ratings on the listing and the seller are recomputed from the rows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.loader import render_to_string
from django.test import RequestFactory

from apps.core.exceptions import Conflict
from apps.jobs.services import parts_schedule, work_complete, work_start
from apps.marketplace.models import Listing, Purchase, Review
from apps.marketplace.selectors.reviews import review_context, seller_rating
from apps.marketplace.services.reviews import (
    review_create,
    review_delete,
    review_reply,
    review_update,
)
from apps.marketplace.services.uses import capacity_book, playbook_attach, purchase_instantiate
from tests.fixtures.market import Market, make_listing, paid_purchase
from tests.marketplace.test_uses import complete, submit
from tests.users.factories import UserFactory

pytestmark = pytest.mark.django_db


def used_template(market: Market, buyer: Any, *, done: bool = True) -> Purchase:
    """A template purchase of `buyer` with a job made from it (completed unless told)."""
    purchase = paid_purchase(market.template, buyer)
    job = purchase_instantiate(by=buyer, purchase=purchase, values={})
    if done:
        complete(job)
    return purchase


def test_the_buyer_reviews_once_a_job_made_from_the_template_completed(market: Market):
    purchase = paid_purchase(market.template, market.designer)
    with pytest.raises(PermissionDenied, match="Complete a job with it to review"):
        review_create(by=market.designer, purchase=purchase, stars=5)
    job = purchase_instantiate(by=market.designer, purchase=purchase, values={})
    with pytest.raises(PermissionDenied, match="Complete a job with it to review"):
        review_create(by=market.designer, purchase=purchase, stars=5)
    complete(job)
    review = review_create(by=market.designer, purchase=purchase, stars=4, text=" Solid. ")
    assert (review.listing, review.author, review.stars, review.text) == (
        market.template,
        market.designer,
        4,
        "Solid.",
    )
    listing = Listing.objects.get(pk=market.template.pk)
    assert (listing.rating_avg, listing.rating_count) == (Decimal("4.00"), 1)


def test_a_playbook_is_reviewed_once_a_part_following_it_completed(market: Market):
    purchase = paid_purchase(market.playbook, market.designer)
    job = submit(
        market,
        [
            {
                "name": "a",
                "material": "PLA",
                "process": "fdm",
                "size_x_mm": 50,
                "size_y_mm": 40,
                "size_z_mm": 30,
            }
        ]
        * 2,
    )
    first, second = job.parts.order_by("id")
    playbook_attach(by=market.designer, purchase=purchase, part=first)
    parts_schedule()
    # the other part completing is not enough
    second.refresh_from_db()
    assert second.assigned_node_id is not None
    work_start(node_id=second.assigned_node_id, part_id=second.pk)
    work_complete(node_id=second.assigned_node_id, part_id=second.pk, quality_score=1.0)
    with pytest.raises(PermissionDenied, match="Complete a job"):
        review_create(by=market.designer, purchase=purchase, stars=3)
    # the part following it completing is (its job still running)
    first.refresh_from_db()
    assert first.assigned_node_id is not None
    work_start(node_id=first.assigned_node_id, part_id=first.pk)
    work_complete(node_id=first.assigned_node_id, part_id=first.pk, quality_score=1.0)
    assert review_create(by=market.designer, purchase=purchase, stars=3).stars == 3


def test_capacity_is_reviewed_once_a_booked_job_completed(market: Market):
    purchase = paid_purchase(market.capacity, market.designer, quantity=100)
    job = submit(market)
    capacity_book(by=market.designer, purchase=purchase, job=job)
    with pytest.raises(PermissionDenied, match="Complete a job"):
        review_create(by=market.designer, purchase=purchase, stars=5)
    complete(job)
    assert review_create(by=market.designer, purchase=purchase, stars=5)


def test_who_may_not_review(market: Market):
    purchase = used_template(market, market.designer)
    # another organization's designer
    with pytest.raises(PermissionDenied, match="Only the buyer"):
        review_create(by=market.designer2, purchase=purchase, stars=1)
    # a colleague of the buyer (same organization, may buy) who is not the buyer
    with pytest.raises(PermissionDenied, match="Only the buyer"):
        review_create(by=market.engineer, purchase=purchase, stars=1)
    # the seller
    with pytest.raises(PermissionDenied, match="Only the buyer"):
        review_create(by=market.vendor, purchase=purchase, stars=5)
    # bad stars and text
    for stars in (0, 6, 4.5, True):
        with pytest.raises(ValidationError) as bad:
            review_create(by=market.designer, purchase=purchase, stars=stars)  # type: ignore[arg-type]
        assert "stars" in bad.value.message_dict
    with pytest.raises(ValidationError, match="At most 4000 characters"):
        review_create(by=market.designer, purchase=purchase, stars=3, text="x" * 4001)
    assert not Review.objects.exists()
    # once is enough
    review_create(by=market.designer, purchase=purchase, stars=3)
    with pytest.raises(Conflict, match="already reviewed"):
        review_create(by=market.designer, purchase=purchase, stars=5)
    assert Review.objects.count() == 1


def test_a_refunded_purchase_cannot_be_reviewed(market: Market):
    purchase = used_template(market, market.designer)
    Purchase.objects.filter(pk=purchase.pk).update(status=Purchase.Status.REFUNDED)
    purchase.refresh_from_db()
    with pytest.raises(PermissionDenied, match="A refunded purchase cannot be reviewed"):
        review_create(by=market.designer, purchase=purchase, stars=1)
    Purchase.objects.filter(pk=purchase.pk).update(status=Purchase.Status.PARTIALLY_REFUNDED)
    purchase.refresh_from_db()
    assert review_create(by=market.designer, purchase=purchase, stars=2)


def test_ratings_are_recomputed_from_the_reviews(market: Market):
    listing = market.template
    first = review_create(
        by=market.designer, purchase=used_template(market, market.designer), stars=5
    )
    review_create(by=market.designer2, purchase=used_template(market, market.designer2), stars=4)
    listing.refresh_from_db()
    assert (listing.rating_avg, listing.rating_count) == (Decimal("4.50"), 2)
    third_buyer = UserFactory.create(role="engineer", organization=market.other)
    review_create(by=third_buyer, purchase=used_template(market, third_buyer), stars=4)
    listing.refresh_from_db()
    assert (listing.rating_avg, listing.rating_count) == (Decimal("4.33"), 3)

    with pytest.raises(PermissionDenied, match="Only the review's author"):
        review_update(by=market.designer2, review=first, stars=1, text="")
    review_update(by=market.designer, review=first, stars=1, text="Broke.")
    listing.refresh_from_db()
    assert (listing.rating_avg, listing.rating_count) == (Decimal("3.00"), 3)

    with pytest.raises(PermissionDenied, match="author or an administrator"):
        review_delete(by=market.vendor, review=first)
    review_delete(by=market.admin, review=first)
    listing.refresh_from_db()
    assert (listing.rating_avg, listing.rating_count) == (Decimal("4.00"), 2)

    # the seller's rating covers every listing of theirs
    playbook = paid_purchase(market.playbook, market.designer)
    job = submit(market)
    playbook_attach(by=market.designer, purchase=playbook, part=job.parts.get())
    complete(job)
    review_create(by=market.designer, purchase=playbook, stars=1)
    assert seller_rating(organization=market.forge) == (Decimal("3.00"), 3)
    assert seller_rating(organization=market.other) == (None, 0)


def test_the_seller_replies_and_may_rewrite_the_reply(market: Market):
    review = review_create(
        by=market.designer, purchase=used_template(market, market.designer), stars=2
    )
    replied = review_reply(by=market.vendor, review=review, text="Sorry: fixed in v2.")
    assert replied.reply == "Sorry: fixed in v2." and replied.replied_by == market.vendor
    first_at = replied.replied_at
    again = review_reply(by=market.admin, review=review, text="Moderated.")
    assert again.reply == "Moderated." and again.replied_by == market.admin
    assert again.replied_at is not None and first_at is not None
    assert again.replied_at >= first_at
    with pytest.raises(ValidationError, match="Write something"):
        review_reply(by=market.vendor, review=review, text="  ")


def test_only_the_seller_replies(market: Market):
    review = review_create(
        by=market.designer, purchase=used_template(market, market.designer), stars=2
    )
    # a seller (vendor of another company), a designer who sells their own listings,
    # the reviewer and a viewer may not
    for who in ("rival", "designer2", "designer", "viewer", "operator"):
        with pytest.raises(PermissionDenied, match="Only the seller"):
            review_reply(by=market.user(who), review=review, text="Hi")
    # a seller replying to another seller's listing: the rival owns a listing of its own
    rival_listing = make_listing(market.rival.organizations.get(), market.rival)
    assert rival_listing.seller != review.listing.seller
    with pytest.raises(PermissionDenied):
        review_reply(by=market.rival, review=review, text="Buy mine instead")


def test_review_context_says_what_the_caller_may_do(market: Market):
    listing = market.template
    reviewer = used_template(market, market.designer)
    waiting = used_template(market, market.designer2, done=False)
    assert waiting.buyer == market.designer2

    ctx = review_context(user=market.designer, listing=listing, page=None)
    assert ctx["review_purchase"] == reviewer and not ctx["can_reply"]
    assert ctx["review_blocked"] is None and ctx["own_review"] is None
    review = review_create(by=market.designer, purchase=reviewer, stars=5, text="Great")
    ctx = review_context(user=market.designer, listing=listing, page=1)
    assert ctx["review_purchase"] is None and ctx["own_review"] == review
    assert list(ctx["reviews"]) == [review]

    ctx = review_context(user=market.designer2, listing=listing, page=1)
    assert ctx["review_purchase"] is None
    assert ctx["review_blocked"] == "Complete a job with it to review."
    assert review_context(user=market.vendor, listing=listing)["can_reply"]
    assert review_context(user=market.admin, listing=listing)["can_reply"]
    assert not review_context(user=market.rival, listing=listing)["can_reply"]
    stranger = review_context(user=market.viewer, listing=listing)
    assert stranger["review_purchase"] is None and stranger["review_blocked"] is None


def _render(user: Any, listing: Listing, page: Any = None) -> str:
    request = RequestFactory().get(f"/market/listings/{listing.pk}/", {"reviews": page or 1})
    request.user = user
    context = {"listing": listing, "request": request, "user": user}
    context.update(review_context(user=user, listing=listing, page=page))
    return render_to_string("marketplace/_reviews.html", context, request=request)


def test_the_reviews_section_renders_forms_replies_and_pages(market: Market):
    listing = market.template
    purchase = used_template(market, market.designer)
    html = _render(market.designer, listing)
    assert "No reviews yet" in html
    assert f'action="/market/purchases/{purchase.pk}/review/"' in html

    html = _render(market.designer2, listing)
    assert "Review “Drone arm”" not in html and "Complete a job with it" not in html
    used_template(market, market.designer2, done=False)
    assert "You bought this. Complete a job with it to review." in _render(
        market.designer2, listing
    )

    review = review_create(by=market.designer, purchase=purchase, stars=4, text="Fits well")
    review_reply(by=market.vendor, review=review, text="Thanks!")
    listing.refresh_from_db()
    seller_view = _render(market.vendor, listing)
    assert 'aria-label="4 of 5 stars"' in seller_view and "Fits well" in seller_view
    assert "Forge replied" in seller_view and "Thanks!" in seller_view
    assert f'action="/market/reviews/{review.pk}/reply/"' in seller_view
    assert "<strong>4.00</strong> out of 5 · 1 review" in seller_view
    author_view = _render(market.designer, listing)
    assert f'action="/market/reviews/{review.pk}/edit/"' in author_view
    assert "/reply/" not in author_view

    # eleven more reviews make two pages, newest first
    for n in range(11):
        buyer = UserFactory.create(role="designer", organization=market.other, email=f"b{n}@f.test")
        review_create(by=buyer, purchase=used_template(market, buyer), stars=5, text=f"n{n}")
    first = _render(market.viewer, listing)
    assert "Page 1 of 2" in first and "?reviews=2#reviews" in first
    assert "n10" in first and "Fits well" not in first
    second = _render(market.viewer, listing, page="2")
    assert "Fits well" in second and "?reviews=1#reviews" in second

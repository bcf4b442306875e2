"""The portal pages that use a purchase (template, playbook, capacity) and the review forms,
with a signed-in browser-like client."""

from __future__ import annotations

import pytest

from apps.jobs.models import Job
from apps.marketplace.models import Purchase, PurchaseUse, Review
from tests.fixtures.market import Market, paid_purchase
from tests.marketplace.test_reviews import used_template
from tests.marketplace.test_uses import PLA, submit

pytestmark = pytest.mark.django_db


def use_url(purchase: Purchase) -> str:
    return f"/market/purchases/{purchase.pk}/use/"


def flashes(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_template_page_creates_a_job_in_one_click(market: Market, signed_in):
    purchase = paid_purchase(market.template, market.designer)
    client = signed_in(market.designer)
    page = client.get(use_url(purchase))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Use “Drone arm”" in html and 'id="instantiate-form"' in html
    assert 'name="scale"' in html and 'min="0.5"' in html and 'max="2.0"' in html
    assert "From 0.5 to 2; default 1." in html and "From 1 to 50; default 1." in html
    assert "Bracket" in html  # the version's parts
    assert "No job made from it yet." in html

    done = client.post(
        f"/market/purchases/{purchase.pk}/instantiate/",
        {"scale": "1", "quantity": "1", "title": "", "priority": "6", "timing": "asap"},
        follow=True,
    )
    job = Job.objects.get()
    assert done.redirect_chain == [(f"/jobs/{job.pk}/", 302)]
    assert f"Job {job.pk} created from “Drone arm”: Drone arm." in flashes(done)
    assert job.priority == 6 and "From the marketplace" in done.content.decode()
    assert f"#{job.pk} Drone arm" in client.get(use_url(purchase)).content.decode()


def test_template_page_shows_errors_on_the_form(market: Market, signed_in):
    purchase = paid_purchase(market.template, market.designer)
    client = signed_in(market.designer)
    url = f"/market/purchases/{purchase.pk}/instantiate/"
    out_of_bounds = client.post(url, {"scale": "3", "priority": "5"})
    assert out_of_bounds.status_code == 400
    assert "Ensure this value is less than or equal to 2.0" in out_of_bounds.content.decode()
    needs_deadline = client.post(url, {"priority": "5", "timing": "balanced"})
    assert needs_deadline.status_code == 400
    assert "Give a deadline" in needs_deadline.content.decode()
    assert not Job.objects.exists()


def test_who_sees_and_uses_the_page(market: Market, signed_in):
    purchase = paid_purchase(market.template, market.designer)
    assert signed_in(market.designer2).get(use_url(purchase)).status_code == 404
    assert signed_in(market.rival).get(use_url(purchase)).status_code == 404
    viewer = signed_in(market.viewer).get(use_url(purchase)).content.decode()
    assert "may look at your organization's purchases but not use them" in viewer
    assert 'id="instantiate-form"' not in viewer
    refused = signed_in(market.viewer).post(
        f"/market/purchases/{purchase.pk}/instantiate/", {"priority": "5"}
    )
    assert refused.status_code == 400 and "not use them" in refused.content.decode()
    vendor_purchase = paid_purchase(market.template, market.rival)
    vendor = signed_in(market.rival).get(use_url(vendor_purchase)).content.decode()
    assert "Your role does not create jobs" in vendor
    assert signed_in(market.designer).get("/market/purchases/0/use/").status_code == 404
    assert (
        signed_in(market.designer).get(f"/market/purchases/{purchase.pk}/instantiate/").status_code
        == 405
    )


def test_playbook_page_attaches_to_ticked_parts_and_detaches(market: Market, signed_in):
    purchase = paid_purchase(market.playbook, market.designer)
    first = submit(market, [{**PLA, "name": "arm"}, {**PLA, "name": "petg", "material": "PETG"}])
    second = submit(market, [{**PLA, "name": "clip"}], title="Clips")
    arm, petg = first.parts.order_by("id")
    client = signed_in(market.designer)
    html = client.get(use_url(purchase)).content.decode()
    assert all(f'name="parts" value="{p.pk}"' in html for p in (arm, petg, second.parts.get()))
    assert "Dry the filament" in html  # the steps, their settings in words with units
    assert "<td>Nozzle temperature (°C)</td><td>210</td>" in html and "nozzle_c" not in html
    assert "written for FDM printing in PLA" in html
    filtered = client.get(use_url(purchase), {"job": second.pk}).content.decode()
    assert f'name="parts" value="{second.parts.get().pk}"' in filtered
    assert f'name="parts" value="{arm.pk}"' not in filtered

    done = client.post(
        f"/market/purchases/{purchase.pk}/attach/",
        {"parts": [arm.pk, petg.pk], "job": first.pk},
        follow=True,
    )
    assert done.redirect_chain == [(f"{use_url(purchase)}?job={first.pk}", 302)]
    said = flashes(done)
    assert "“PLA recipe” attached to arm." in said
    assert any("Part petg is PETG" in line for line in said)
    html = done.content.decode()
    assert f'name="parts" value="{arm.pk}"' not in html  # it follows a playbook now
    use = PurchaseUse.objects.get()
    assert f'action="/market/uses/{use.pk}/remove/"' in html

    nothing = client.post(f"/market/purchases/{purchase.pk}/attach/", {})
    assert nothing.status_code == 400 and "Tick at least one part." in nothing.content.decode()

    assert signed_in(market.designer2).post(f"/market/uses/{use.pk}/remove/").status_code == 404
    detached = client.post(f"/market/uses/{use.pk}/remove/", follow=True)
    assert "Part arm no longer follows the playbook." in flashes(detached)
    assert not PurchaseUse.objects.exists()


def test_capacity_page_books_and_releases(market: Market, signed_in):
    purchase = paid_purchase(market.capacity, market.designer, quantity=30)
    job = submit(market)
    client = signed_in(market.designer)
    html = client.get(use_url(purchase)).content.decode()
    assert "30.00 h left</strong> of 30 h bought (0.00 h booked)" in html
    assert f"#{job.pk} Frame (validated)" in html

    booked = client.post(f"/market/purchases/{purchase.pk}/book/", {"job": job.pk}, follow=True)
    use = PurchaseUse.objects.get()
    assert f"Job {job.pk} booked on “FDM hours” for {use.hours} h" in flashes(booked)[0]
    assert f"{30 - use.hours} h left" in booked.content.decode()

    again = client.post(f"/market/purchases/{purchase.pk}/book/", {"job": job.pk})
    assert again.status_code == 400 and "already booked" in again.content.decode()

    released = client.post(f"/market/uses/{use.pk}/remove/", follow=True)
    assert f"Booking of job {job.pk} released; its hours are back." in flashes(released)
    assert not PurchaseUse.objects.exists()


def test_review_forms(market: Market, signed_in):
    purchase = used_template(market, market.designer)
    client = signed_in(market.designer)
    page = client.get(use_url(purchase)).content.decode()
    assert f'action="/market/purchases/{purchase.pk}/review/"' in page

    # a colleague is refused with a message, nothing stored
    refused = signed_in(market.engineer).post(
        f"/market/purchases/{purchase.pk}/review/",
        {"stars": "5", "next": use_url(purchase)},
        follow=True,
    )
    assert "Review not saved: Only the buyer of this purchase may review it." in flashes(refused)
    bad = client.post(
        f"/market/purchases/{purchase.pk}/review/",
        {"stars": "9", "next": use_url(purchase)},
        follow=True,
    )
    assert any(line.startswith("Review not saved: stars:") for line in flashes(bad))
    assert not Review.objects.exists()

    saved = client.post(
        f"/market/purchases/{purchase.pk}/review/",
        {"stars": "4", "text": "Good", "next": use_url(purchase)},
        follow=True,
    )
    assert saved.redirect_chain == [(use_url(purchase), 302)]
    review = Review.objects.get()
    assert (review.stars, review.text) == (4, "Good")
    assert f'action="/market/reviews/{review.pk}/edit/"' in saved.content.decode()

    # an unsafe `next` falls back to the listing's page
    edited = client.post(
        f"/market/reviews/{review.pk}/edit/",
        {"stars": "2", "text": "Worse", "next": "https://evil.test/"},
    )
    assert edited.status_code == 302 and "evil" not in edited["Location"]
    review.refresh_from_db()
    assert review.stars == 2
    stranger = signed_in(market.designer2).post(
        f"/market/reviews/{review.pk}/edit/", {"stars": "5", "next": "/"}, follow=True
    )
    assert "Review not changed: Only the review's author may edit it." in flashes(stranger)

    replied = signed_in(market.vendor).post(
        f"/market/reviews/{review.pk}/reply/", {"text": "We fixed it", "next": "/market/"}
    )
    assert replied.status_code == 302 and replied["Location"] == "/market/"
    review.refresh_from_db()
    assert review.reply == "We fixed it"
    rival = signed_in(market.rival).post(
        f"/market/reviews/{review.pk}/reply/", {"text": "Ha", "next": "/"}, follow=True
    )
    assert "Reply not saved: Only the seller of this listing may reply to its reviews." in flashes(
        rival
    )


def test_the_use_page_explains_why_the_buyer_cannot_review_yet(market: Market, signed_in):
    purchase = paid_purchase(market.template, market.designer)
    html = signed_in(market.designer).get(use_url(purchase)).content.decode()
    assert "Complete a job with it to review." in html
    assert "/review/" not in html

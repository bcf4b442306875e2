"""The API for using purchases and reviewing them (JWT clients), successes and denials, in
the one error format."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.marketplace.models import Listing, PurchaseUse, Review
from apps.marketplace.services.reviews import review_create
from tests.fixtures.market import Market, make_listing, paid_purchase
from tests.marketplace.test_reviews import used_template
from tests.marketplace.test_uses import PLA, hours_of, submit

pytestmark = pytest.mark.django_db

BASE = "/api/v1/market"


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_instantiate_makes_a_job(market: Market, as_user):
    purchase = paid_purchase(market.template, market.designer)
    response = as_user(market.designer).post(
        f"{BASE}/purchases/{purchase.pk}/instantiate/",
        {"parameters": {"scale": 0.5, "quantity": 1}, "priority": 8, "timing": "asap"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    job = response.json()
    assert set(job) == {"id", "title", "status", "url"}
    assert job["title"] == "Drone arm" and job["status"] == "validated"
    assert job["url"] == f"/jobs/{job['id']}/"
    assert PurchaseUse.objects.get().job_id == job["id"]


def test_instantiate_denials_and_errors(market: Market, as_user):
    purchase = paid_purchase(market.template, market.designer)
    url = f"{BASE}/purchases/{purchase.pk}/instantiate/"
    # another organization: the purchase does not exist for them
    assert as_user(market.designer2).post(url, {}, format="json").status_code == 404
    assert as_user(market.rival).post(url, {}, format="json").status_code == 404
    viewer = as_user(market.viewer).post(url, {}, format="json")
    assert viewer.status_code == 403 and "not use them" in error_of(viewer)["message"]
    bad = as_user(market.designer).post(url, {"parameters": {"scale": 9}}, format="json")
    assert bad.status_code == 400
    assert error_of(bad)["details"] == {"parameters.scale": ["Between 0.5 and 2."]}
    late = as_user(market.designer).post(
        url, {"timing": "balanced"}, format="json"
    )  # energy-aware timing needs a deadline
    assert late.status_code == 400 and "timing" in error_of(late)["details"]
    vendor_purchase = paid_purchase(market.template, market.rival)
    vendor = as_user(market.rival).post(
        f"{BASE}/purchases/{vendor_purchase.pk}/instantiate/", {}, format="json"
    )
    assert vendor.status_code == 403
    assert "does not allow creating jobs" in error_of(vendor)["message"]
    wrong = paid_purchase(market.playbook, market.designer)
    kind = as_user(market.designer).post(
        f"{BASE}/purchases/{wrong.pk}/instantiate/", {}, format="json"
    )
    assert (
        kind.status_code == 400
        and "is a playbook" in error_of(kind)["details"]["non_field_errors"][0]
    )


def test_attach_reports_partial_success_by_index(market: Market, as_user):
    purchase = paid_purchase(market.playbook, market.designer)
    job = submit(market, [{**PLA, "name": "arm"}, {**PLA, "name": "petg", "material": "PETG"}])
    arm, petg = job.parts.order_by("id")
    client = as_user(market.designer)
    url = f"{BASE}/purchases/{purchase.pk}/attach/"
    partly = client.post(url, {"parts": [arm.pk, petg.pk]}, format="json")
    assert partly.status_code == 200
    body = partly.json()
    assert [u["part"] for u in body["attached"]] == [arm.pk]
    assert body["attached"][0]["part_name"] == "arm" and body["attached"][0]["job"] == job.pk
    assert list(body["errors"]) == ["1"] and "written for pla" in body["errors"]["1"][0]
    none = client.post(url, {"parts": [arm.pk, 424242]}, format="json")
    assert none.status_code == 400
    details = error_of(none)["details"]
    assert "already follows the playbook “PLA recipe”" in details["0"][0]
    assert details["1"] == ["No part 424242 in a job of Studio."]
    empty = client.post(url, {"parts": []}, format="json")
    assert empty.status_code == 400 and "parts" in error_of(empty)["details"]
    assert as_user(market.designer2).post(url, {"parts": [arm.pk]}).status_code == 404


def test_uses_are_listed_and_removed(market: Market, as_user):
    purchase = paid_purchase(market.playbook, market.designer)
    job = submit(market)
    client = as_user(market.designer)
    client.post(
        f"{BASE}/purchases/{purchase.pk}/attach/", {"parts": [job.parts.get().pk]}, format="json"
    )
    listed = client.get(f"{BASE}/purchases/{purchase.pk}/uses/")
    assert listed.status_code == 200
    page = listed.json()
    assert page["count"] == 1 and page["page"] == 1 and page["pages"] == 1
    use = page["results"][0]
    assert use["job_status"] == "validated" and use["created_by"] == "designer@f.test"
    assert as_user(market.designer2).get(f"{BASE}/purchases/{purchase.pk}/uses/").status_code == 404
    assert as_user(market.designer2).delete(f"{BASE}/uses/{use['id']}/").status_code == 404
    viewer = as_user(market.viewer).delete(f"{BASE}/uses/{use['id']}/")
    assert viewer.status_code == 403
    assert client.delete(f"{BASE}/uses/{use['id']}/").status_code == 204
    assert not PurchaseUse.objects.exists()


def test_book_capacity(market: Market, as_user):
    purchase = paid_purchase(market.capacity, market.designer, quantity=1)
    job = submit(market)
    client = as_user(market.designer)
    url = f"{BASE}/purchases/{purchase.pk}/book/"
    short = client.post(url, {"job": job.pk}, format="json")
    assert short.status_code == 400
    assert error_of(short)["details"]["job"] == [
        f"Job {job.pk} needs {hours_of(job)} h; this purchase has 1.00 h of 1 h left."
    ]
    theirs = submit(market, by=market.designer2)
    other = client.post(url, {"job": theirs.pk}, format="json")
    assert other.status_code == 400 and "No job" in error_of(other)["details"]["job"][0]

    bigger = paid_purchase(market.capacity, market.designer, quantity=40)
    booked = client.post(f"{BASE}/purchases/{bigger.pk}/book/", {"job": job.pk}, format="json")
    assert booked.status_code == 201
    assert Decimal(booked.json()["hours"]) == hours_of(job)
    again = client.post(f"{BASE}/purchases/{bigger.pk}/book/", {"job": job.pk}, format="json")
    assert again.status_code == 409 and error_of(again)["code"] == "conflict"
    released = client.delete(f"{BASE}/uses/{booked.json()['id']}/")
    assert released.status_code == 204


def test_template_uses_stay_on_record(market: Market, as_user):
    purchase = paid_purchase(market.template, market.designer)
    client = as_user(market.designer)
    client.post(f"{BASE}/purchases/{purchase.pk}/instantiate/", {}, format="json")
    use = PurchaseUse.objects.get()
    refused = client.delete(f"{BASE}/uses/{use.pk}/")
    assert refused.status_code == 400 and "not a capacity booking" in str(error_of(refused))


def test_reviews_are_read_by_everyone_signed_in(market: Market, as_user, api):
    review_create(by=market.designer, purchase=used_template(market, market.designer), stars=4)
    url = f"{BASE}/listings/{market.template.pk}/reviews/"
    for who in ("designer2", "viewer", "operator", "rival"):
        response = as_user(market.user(who)).get(url)
        assert response.status_code == 200
        page = response.json()
        assert page["count"] == 1
        assert page["results"][0]["stars"] == 4
        assert page["results"][0]["author_name"]
    assert api.get(url).status_code == 401
    draft = make_listing(market.forge, market.vendor, status=Listing.Status.DRAFT)
    hidden = f"{BASE}/listings/{draft.pk}/reviews/"
    assert as_user(market.designer).get(hidden).status_code == 404
    assert as_user(market.vendor).get(hidden).status_code == 200


def test_review_write_edit_and_reply(market: Market, as_user):
    purchase = used_template(market, market.designer)
    url = f"{BASE}/purchases/{purchase.pk}/review/"
    colleague = as_user(market.engineer).post(url, {"stars": 5}, format="json")
    assert colleague.status_code == 403 and "Only the buyer" in error_of(colleague)["message"]
    assert as_user(market.designer2).post(url, {"stars": 5}, format="json").status_code == 404
    bad = as_user(market.designer).post(url, {"stars": 6}, format="json")
    assert bad.status_code == 400 and "stars" in error_of(bad)["details"]
    created = as_user(market.designer).post(url, {"stars": 5, "text": "Great"}, format="json")
    assert created.status_code == 201
    review = created.json()
    assert review["stars"] == 5 and review["reply"] == "" and review["purchase"] == purchase.pk
    second = as_user(market.designer).post(url, {"stars": 1}, format="json")
    assert second.status_code == 409

    detail = f"{BASE}/reviews/{review['id']}/"
    assert as_user(market.engineer).patch(detail, {"stars": 1}, format="json").status_code == 403
    edited = as_user(market.designer).patch(detail, {"stars": 3}, format="json")
    assert edited.status_code == 200 and edited.json()["text"] == "Great"
    listing = Listing.objects.get(pk=market.template.pk)
    assert listing.rating_avg == Decimal("3.00")

    reply = f"{BASE}/reviews/{review['id']}/reply/"
    rival = as_user(market.rival).post(reply, {"text": "Mine is better"}, format="json")
    assert rival.status_code == 403
    answered = as_user(market.vendor).post(reply, {"text": "Thank you"}, format="json")
    assert answered.status_code == 200
    assert answered.json()["reply"] == "Thank you" and answered.json()["reply_at"]

    assert as_user(market.vendor).delete(detail).status_code == 403
    assert as_user(market.designer).delete(detail).status_code == 204
    assert not Review.objects.exists()
    listing.refresh_from_db()
    assert (listing.rating_avg, listing.rating_count) == (None, 0)

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from apps.marketplace.models import FakeCharge, LedgerTransaction, Listing, Purchase
from tests.fixtures.market import Market, make_listing

URL = "/api/v1/market/purchases/"


def post(client: Any, body: dict[str, Any], key: str | None = "k-1") -> Any:
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(URL, body, format="json", **headers)


def test_buying_through_the_api_then_retrying_returns_the_same_purchase(market: Market, as_user):
    client = as_user(market.designer)

    first = post(client, {"listing": market.template.pk})
    again = post(client, {"listing": market.template.pk})

    assert first.status_code == 201, first.json()
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    body = first.json()
    assert body["status"] == "paid"
    assert (body["amount"], body["commission"], body["currency"]) == ("10.00", "3.00", "USD")
    assert body["listing"] == {
        "id": market.template.pk,
        "title": "Drone arm",
        "kind": "template",
        "seller": "Forge",
    }
    assert body["usable"] is True
    assert FakeCharge.objects.count() == 1
    assert LedgerTransaction.objects.filter(kind="sale").count() == 1


def test_the_key_may_come_in_the_body(market: Market, as_user):
    response = post(
        as_user(market.designer),
        {"listing": market.capacity.pk, "quantity": 4, "client_key": "body-key"},
        key=None,
    )
    assert response.status_code == 201
    assert response.json()["amount"] == "50.00"
    assert Purchase.objects.get().client_key == "body-key"


def test_a_purchase_without_any_key_is_refused_in_the_error_format(market: Market, as_user):
    response = post(as_user(market.designer), {"listing": market.template.pk}, key=None)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert "client_key" in error["details"]
    assert not Purchase.objects.exists()


def test_a_key_reused_for_something_else_is_a_conflict(market: Market, as_user):
    client = as_user(market.designer)
    post(client, {"listing": market.template.pk}, key="same")

    response = post(client, {"listing": market.playbook.pk}, key="same")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


def test_a_declined_payment_answers_402_with_the_purchase(market: Market, as_user):
    response = post(
        as_user(market.designer), {"listing": market.template.pk, "method": "fake_declined"}
    )

    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "payment_declined"
    assert Purchase.objects.get(pk=error["details"]["purchase"]).status == "failed"


def test_an_unavailable_provider_answers_503_and_the_retry_pays(market: Market, as_user):
    client = as_user(market.designer)
    response = post(client, {"listing": market.template.pk, "method": "fake_unavailable"})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"

    retry = post(client, {"listing": market.template.pk})

    assert retry.status_code == 200
    assert retry.json()["status"] == "paid"
    assert FakeCharge.objects.count() == 1


@pytest.mark.parametrize(
    ("who", "status"), [("viewer", 403), ("operator", 403), ("admin", 403), ("vendor", 400)]
)
def test_who_may_not_buy(market: Market, as_user, who, status):
    response = post(as_user(market.user(who)), {"listing": market.template.pk})

    assert response.status_code == status
    assert not Purchase.objects.exists()


def test_drafts_are_not_found_and_anonymous_callers_are_refused(market: Market, as_user, api):
    draft = make_listing(market.forge, market.vendor, status=Listing.Status.DRAFT)

    assert post(as_user(market.designer), {"listing": draft.pk}).status_code == 404
    assert post(api, {"listing": market.template.pk}).status_code == 401
    assert api.get(URL).status_code == 401


def test_bad_fields_are_reported_by_name(market: Market, as_user):
    client = as_user(market.designer)
    response = post(client, {"listing": "x", "quantity": 0, "method": "cash"})

    assert response.status_code == 400
    assert set(response.json()["error"]["details"]) == {"listing", "quantity", "method"}
    hours = post(client, {"listing": market.capacity.pk, "quantity": 500}, key="h")
    assert hours.status_code == 400
    assert "quantity" in hours.json()["error"]["details"]


def test_purchases_are_listed_for_the_buying_organization_only(market: Market, as_user):
    post(as_user(market.designer), {"listing": market.template.pk}, key="a")
    post(as_user(market.designer2), {"listing": market.playbook.pk}, key="b")
    mine = Purchase.objects.get(buyer=market.designer)

    colleague = as_user(market.engineer).get(URL).json()
    other = as_user(market.designer2).get(URL).json()
    everyone = as_user(market.admin).get(URL).json()

    assert [p["id"] for p in colleague["results"]] == [mine.pk]  # same organization
    assert [p["listing"]["title"] for p in other["results"]] == ["PLA recipe"]
    assert everyone["count"] == 2
    assert as_user(market.designer2).get(f"{URL}{mine.pk}/").status_code == 404
    assert as_user(market.vendor).get(f"{URL}{mine.pk}/").status_code == 404
    detail = as_user(market.engineer).get(f"{URL}{mine.pk}/").json()
    assert (detail["version"], detail["latest_version"]) == (1, 1)


def test_purchase_list_filters(market: Market, as_user):
    client = as_user(market.designer)
    post(client, {"listing": market.template.pk}, key="a")
    post(client, {"listing": market.playbook.pk, "method": "fake_declined"}, key="b")

    paid = client.get(URL, {"status": "paid"}).json()
    playbooks = client.get(URL, {"kind": "playbook"}).json()
    bad = client.get(URL, {"status": "lost"})

    assert [p["listing"]["kind"] for p in paid["results"]] == ["template"]
    assert [p["status"] for p in playbooks["results"]] == ["failed"]
    assert bad.status_code == 400
    assert "status" in bad.json()["error"]["details"]


def test_payment_methods_are_listed(market: Market, as_user):
    methods = as_user(market.designer).get("/api/v1/market/payment-methods/").json()
    assert {m["method"] for m in methods} == {"fake_ok", "fake_declined"}


def test_amounts_are_decimal_strings(market: Market, as_user):
    odd = make_listing(market.forge, market.vendor, price="0.55", title="Cheap")
    body = post(as_user(market.designer), {"listing": odd.pk}).json()
    assert (body["amount"], body["commission"]) == ("0.55", "0.17")  # 0.165 half-up
    assert Decimal(body["amount"]) - Decimal(body["commission"]) == Decimal("0.38")


def test_the_purchase_list_costs_the_same_queries_however_many_rows(market: Market, as_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = as_user(market.designer)
    post(client, {"listing": market.template.pk}, key="a")
    with CaptureQueriesContext(connection) as one:
        assert client.get(URL).json()["count"] == 1
    post(client, {"listing": market.playbook.pk}, key="b")
    post(client, {"listing": market.capacity.pk, "quantity": 2}, key="c")
    with CaptureQueriesContext(connection) as three:
        body = client.get(URL).json()
    assert body["count"] == 3
    assert {p["latest_version"] for p in body["results"]} == {1}
    assert len(three) == len(one)

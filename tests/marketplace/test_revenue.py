"""The seller's revenue figures (selectors.sales.seller_revenue over real sales, refunds and
payouts) and the revenue, sales, refund, ledger and payout API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from apps.marketplace.models import LedgerTransaction, Listing, Purchase
from apps.marketplace.selectors.revenue_export import (
    payouts_due_list,
    revenue_currencies,
    revenue_period_starts,
)
from apps.marketplace.selectors.sales import ledger_check, seller_revenue
from apps.marketplace.services import payout_record, payouts_due, purchase_create, purchase_refund
from apps.users.models import Organization
from tests.fixtures.fleet import extended
from tests.fixtures.market import Market, make_listing
from tests.marketplace.factories import LedgerEntryFactory, LedgerTransactionFactory

D = Decimal
MARCH = {"start": "2025-03-01", "end": "2025-03-31"}


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def sell(
    market: Market,
    listing: Listing | str,
    who: str = "designer",
    *,
    on: str | None = None,
    quantity: int = 1,
) -> Purchase:
    """A real sale through purchase_create, its ledger posting moved to `on` (a date)."""
    item = market.listing(listing) if isinstance(listing, str) else listing
    purchase, _ = purchase_create(
        by=market.user(who),
        listing=item,
        client_key=f"k{Purchase.objects.count()}",
        quantity=quantity,
    )
    assert purchase.status == Purchase.Status.PAID
    if on:
        purchase.transactions.filter(kind="sale").update(created_at=at(on))
    return purchase


def refund(
    market: Market, purchase: Purchase, amount: str | None, *, on: str, by: str = "vendor"
) -> Purchase:
    done = purchase_refund(by=market.user(by), purchase=purchase, amount=amount, reason="Broken")
    latest = purchase.transactions.filter(kind="refund").order_by("-id").first()
    assert latest is not None
    LedgerTransaction.objects.filter(pk=latest.pk).update(created_at=at(on))
    return done


def pay_out(market: Market, amount: str, *, on: str, currency: str = "USD") -> None:
    posted = payout_record(
        by=market.admin, organization=market.forge, currency=currency, amount=amount
    )
    LedgerTransaction.objects.filter(pk=posted.pk).update(created_at=at(on))


@dataclass(frozen=True)
class March(Market):
    sales: dict[str, Purchase]
    euro: Listing
    rival_org: Organization


def march_sales(market: Market) -> March:
    """Forge's sales in March 2025 (weeks starting 3 and 10 March) in USD and EUR, one sale in
    February, a partial refund and a payout in March, and a rival's sale that is not Forge's."""
    euro = make_listing(market.forge, market.vendor, price="8.00", title="Euro arm")
    euro.currency = "EUR"
    euro.save(update_fields=["currency"])
    rival_org = market.rival.organizations.get()
    rivals = make_listing(rival_org, market.rival, price="99.00", title="Rival's")
    sales = {
        "feb": sell(market, "capacity", "designer2", on="2025-02-20", quantity=1),  # 12.50
        "template": sell(market, "template", on="2025-03-03"),  # 10.00, 3.00 commission
        "euro": sell(market, euro, on="2025-03-04"),  # 8.00 EUR, 2.40 commission
        "capacity": sell(market, "capacity", "designer2", on="2025-03-05", quantity=2),  # 25.00
        "playbook": sell(market, "playbook", on="2025-03-12"),  # 25.00, 6.25 commission
        "rival": sell(market, rivals, on="2025-03-12"),
    }
    refund(market, sales["capacity"], "5.00", on="2025-03-13")  # 1.00 commission back
    pay_out(market, "10.00", on="2025-03-14")
    return extended(March, market, sales=sales, euro=euro, rival_org=rival_org)


@pytest.fixture
def march(market: Market) -> March:
    return march_sales(market)


def figures(row: Any) -> tuple[Any, ...]:
    return (row.sales, row.gross, row.refunds, row.commission, row.net)


# --- seller_revenue -----------------------------------------------------------------------------


def test_seller_revenue_per_week_listing_and_currency(march):
    revenue = seller_revenue(
        organization=march.forge, start=date(2025, 3, 1), end=date(2025, 3, 31), period="week"
    )

    by_period = {(r.key, r.currency): figures(r) for r in revenue.by_period}
    assert by_period == {
        (date(2025, 3, 3), "USD"): (2, D("35.00"), D("0.00"), D("8.00"), D("27.00")),
        (date(2025, 3, 3), "EUR"): (1, D("8.00"), D("0.00"), D("2.40"), D("5.60")),
        (date(2025, 3, 10), "USD"): (1, D("25.00"), D("5.00"), D("5.25"), D("14.75")),
    }
    usd = [(r.label, *figures(r)) for r in revenue.by_listing if r.currency == "USD"]
    assert usd == [
        ("FDM hours", 1, D("25.00"), D("5.00"), D("4.00"), D("16.00")),
        ("PLA recipe", 1, D("25.00"), D("0.00"), D("6.25"), D("18.75")),
        ("Drone arm", 1, D("10.00"), D("0.00"), D("3.00"), D("7.00")),
    ]
    assert figures(revenue.totals["USD"]) == (3, D("60.00"), D("5.00"), D("13.25"), D("41.75"))
    assert figures(revenue.totals["EUR"]) == (1, D("8.00"), D("0.00"), D("2.40"), D("5.60"))
    # paid out in the range; due now counts February's sale too (10.00 net)
    assert revenue.payouts == {"USD": D("10.00"), "EUR": D("0.00")}
    assert revenue.due == {"USD": D("41.75"), "EUR": D("5.60")}
    assert revenue.due["USD"] == payouts_due(organization=march.forge, currency="USD")
    assert revenue_currencies(revenue) == ["USD", "EUR"]


@pytest.mark.parametrize(
    ("period", "keys"),
    [
        ("day", [date(2025, 3, 3), date(2025, 3, 5), date(2025, 3, 12), date(2025, 3, 13)]),
        ("month", [date(2025, 3, 1)]),
    ],
)
def test_seller_revenue_per_day_and_month(march, period, keys):
    revenue = seller_revenue(
        organization=march.forge, start=date(2025, 3, 1), end=date(2025, 3, 31), period=period
    )

    assert [r.key for r in revenue.by_period if r.currency == "USD"] == keys
    assert figures(revenue.totals["USD"]) == (3, D("60.00"), D("5.00"), D("13.25"), D("41.75"))


def test_a_refund_counts_when_it_is_made_even_for_an_earlier_sale(march):
    refund(march, march.sales["feb"], None, on="2025-04-02")

    revenue = seller_revenue(
        organization=march.forge, start=date(2025, 4, 1), end=date(2025, 4, 30), period="month"
    )

    (april,) = revenue.by_period
    assert figures(april) == (0, D("0.00"), D("12.50"), D("-2.50"), D("-10.00"))
    assert revenue.payouts == {"USD": D("0.00"), "EUR": D("0.00")}


def test_dates_are_inclusive_and_other_sellers_are_left_out(march):
    one_day = seller_revenue(
        organization=march.forge, start=date(2025, 3, 3), end=date(2025, 3, 3), period="day"
    )
    rival = seller_revenue(
        organization=march.rival_org, start=date(2025, 3, 1), end=date(2025, 3, 31)
    )

    assert figures(one_day.totals["USD"]) == (1, D("10.00"), D("0.00"), D("3.00"), D("7.00"))
    assert [r.label for r in rival.by_listing] == ["Rival's"]
    assert rival.totals["USD"].gross == D("99.00")


def test_period_starts_cover_the_range_as_the_database_truncates():
    assert revenue_period_starts(start=date(2025, 3, 5), end=date(2025, 3, 18), period="week") == [
        date(2025, 3, 3),
        date(2025, 3, 10),
        date(2025, 3, 17),
    ]
    assert revenue_period_starts(
        start=date(2024, 11, 30), end=date(2025, 2, 1), period="month"
    ) == [date(2024, 11, 1), date(2024, 12, 1), date(2025, 1, 1), date(2025, 2, 1)]
    assert (
        len(revenue_period_starts(start=date(2024, 2, 28), end=date(2024, 3, 1), period="day")) == 3
    )


def test_payouts_due_list_has_every_seller_and_currency_owed(march):
    sell(march, "template", "designer2")  # Other Studio: 7.00 more to Forge in USD

    assert [(r.organization.name, r.currency, r.due) for r in payouts_due_list()] == [
        ("Rival", "USD", D("69.30")),
        ("Forge", "USD", D("48.75")),
        ("Forge", "EUR", D("5.60")),
    ]


# --- API: revenue -------------------------------------------------------------------------------

REVENUE = reverse("api:market-revenue")


def test_revenue_api_gives_the_sellers_figures_as_strings(march, as_user):
    response = as_user(march.vendor).get(REVENUE, {**MARCH, "period": "week"})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["seller"] == {"id": march.forge.pk, "name": "Forge", "slug": "forge"}
    assert (body["start"], body["end"], body["period"]) == ("2025-03-01", "2025-03-31", "week")
    assert body["currencies"] == ["USD", "EUR"]
    assert body["totals"][0] == {
        "currency": "USD",
        "sales": 3,
        "gross": "60.00",
        "refunds": "5.00",
        "commission": "13.25",
        "net": "41.75",
    }
    assert body["by_period"][0] == {
        "period": "2025-03-03",
        "currency": "EUR",
        "sales": 1,
        "gross": "8.00",
        "refunds": "0.00",
        "commission": "2.40",
        "net": "5.60",
    }
    assert [(r["title"], r["listing"]) for r in body["by_listing"][:2]] == [
        ("FDM hours", march.capacity.pk),
        ("PLA recipe", march.playbook.pk),
    ]
    assert body["payouts"] == [{"currency": "USD", "amount": "10.00"}]
    assert body["due"] == [
        {"currency": "EUR", "amount": "5.60"},
        {"currency": "USD", "amount": "41.75"},
    ]


def test_revenue_api_defaults_to_the_last_90_days_by_week(march, as_user):
    body = as_user(march.vendor).get(REVENUE).json()

    start, end = date.fromisoformat(body["start"]), date.fromisoformat(body["end"])
    assert (end - start, body["period"]) == (timedelta(days=89), "week")
    assert (body["by_period"], body["totals"]) == ([], [])  # March 2025 is long gone
    assert {d["currency"] for d in body["due"]} == {"USD", "EUR"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "2025-03-31", "end": "2025-03-01"}, "start"),
        ({"start": "2021-01-01", "end": "2025-03-01"}, "start"),
        ({"start": "2025-02-30"}, "start"),
        ({"period": "year"}, "period"),
        ({"seller": "forge"}, "seller"),
    ],
)
def test_revenue_api_rejects_bad_queries(march, as_user, query, field):
    response = as_user(march.vendor).get(REVENUE, query)

    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


def test_three_years_is_the_longest_range(march, as_user):
    response = as_user(march.vendor).get(REVENUE, {"start": "2022-03-31", "end": "2025-03-31"})

    assert response.status_code == 200


def test_revenue_api_denials(march, as_user):
    forge = {"seller": march.forge.pk, **MARCH}

    assert as_user(march.viewer).get(REVENUE, forge).status_code == 403
    assert as_user(march.operator).get(REVENUE, forge).status_code == 403
    assert as_user(march.rival).get(REVENUE, forge).status_code == 404
    # the buyer (a designer, who sells for Studio) sees Studio's revenue, not the seller's
    assert as_user(march.designer).get(REVENUE, forge).status_code == 404
    studio = as_user(march.designer).get(REVENUE, MARCH).json()
    assert (studio["seller"]["name"], studio["totals"]) == ("Studio", [])
    assert as_user(march.admin).get(REVENUE, forge).json()["totals"][0]["net"] == "41.75"


def test_admins_default_to_the_first_organization_that_has_listed(march, as_user):
    body = as_user(march.admin).get(REVENUE, MARCH).json()

    assert body["seller"]["name"] == "Forge"


# --- API: sales and refunds ---------------------------------------------------------------------

SALES = reverse("api:market-sale-list")


def refund_url(purchase: Purchase) -> str:
    return reverse("api:market-sale-refund", args=[purchase.pk])


def test_sales_api_lists_the_sellers_sales_with_filters(march, as_user):
    client = as_user(march.vendor)

    body = client.get(SALES).json()
    by_status = client.get(SALES, {"status": "partially_refunded"}).json()
    by_listing = client.get(SALES, {"listing": march.playbook.pk}).json()

    assert body["count"] == 5  # not the rival's
    first = body["results"][0]
    assert first["listing"]["title"] in {"Drone arm", "FDM hours", "PLA recipe", "Euro arm"}
    assert set(first) >= {"buyer_organization", "commission", "refundable", "can_refund"}
    assert [s["id"] for s in by_status["results"]] == [march.sales["capacity"].pk]
    (sale,) = by_listing["results"]
    assert (sale["amount"], sale["commission"], sale["status"], sale["can_refund"]) == (
        "25.00",
        "6.25",
        "paid",
        True,
    )
    assert sale["buyer_organization"]["name"] == "Studio"
    assert client.get(SALES, {"status": "lost"}).status_code == 400
    assert client.get(SALES, {"listing": "x"}).status_code == 400


def test_sales_api_is_paginated(march, as_user):
    body = as_user(march.vendor).get(SALES, {"page_size": 2}).json()

    assert (body["count"], body["pages"], len(body["results"])) == (5, 3, 2)


def test_sales_api_denials(march, as_user):
    assert as_user(march.viewer).get(SALES).status_code == 403
    assert as_user(march.operator).get(SALES).status_code == 403
    rival = as_user(march.rival).get(SALES).json()
    assert [s["listing"]["title"] for s in rival["results"]] == ["Rival's"]
    assert as_user(march.designer).get(SALES).json()["count"] == 0
    assert as_user(march.admin).get(SALES).json()["count"] == 6


def test_refund_api_refunds_part_then_the_rest(march, as_user):
    sale = march.sales["template"]
    client = as_user(march.vendor)

    part = client.post(refund_url(sale), {"amount": "4.00", "reason": "Late"})
    rest = client.post(refund_url(sale), {"reason": "Cancelled"})

    assert part.status_code == 200, part.json()
    assert (part.json()["refunded_amount"], part.json()["status"]) == ("4.00", "partially_refunded")
    assert (rest.json()["refunded_amount"], rest.json()["status"]) == ("10.00", "refunded")
    assert rest.json()["can_refund"] is False
    assert ledger_check()["balanced"]


def test_refund_api_errors(march, as_user):
    sale = march.sales["template"]
    client = as_user(march.vendor)

    no_reason = client.post(refund_url(sale), {"amount": "1.00"})
    too_much = client.post(refund_url(sale), {"amount": "10.01", "reason": "x"})
    blank = client.post(refund_url(sale), {"reason": "  "})

    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()["error"]["details"]
    assert too_much.status_code == 400
    assert "amount" in too_much.json()["error"]["details"]
    assert blank.status_code == 400
    client.post(refund_url(sale), {"reason": "All of it"})
    again = client.post(refund_url(sale), {"reason": "Again"})
    assert again.status_code == 400  # a refunded purchase


def test_refund_api_denials(march, as_user):
    sale = march.sales["template"]
    body = {"reason": "Please"}

    assert as_user(march.viewer).post(refund_url(sale), body).status_code == 403
    assert as_user(march.rival).post(refund_url(sale), body).status_code == 404
    # the buyer cannot refund their own purchase to themselves
    assert as_user(march.designer).post(refund_url(sale), body).status_code == 404
    sale.refresh_from_db()
    assert sale.refunded_amount == 0
    assert as_user(march.admin).post(refund_url(sale), body).status_code == 200


# --- API: ledger and payouts --------------------------------------------------------------------

LEDGER = reverse("api:market-ledger")
PAYOUTS = reverse("api:market-payout-create")


def test_ledger_api_shows_balances_and_the_check(march, as_user):
    body = as_user(march.admin).get(LEDGER).json()

    assert body["balanced"] is True
    assert body["unbalanced_transactions"] == []
    assert {(t["currency"], t["amount"]) for t in body["trial_balance"]} == {
        ("USD", "0.00"),
        ("EUR", "0.00"),
    }
    payable = [
        a for a in body["accounts"] if a["kind"] == "seller_payable" and a["currency"] == "USD"
    ]
    assert {(a["organization_name"], a["balance"]) for a in payable} == {
        ("Forge", "-41.75"),
        ("Rival", "-69.30"),
    }
    assert {"organization_name": "Forge", "currency": "EUR", "due": "5.60"}.items() <= next(
        d for d in body["payouts_due"] if d["currency"] == "EUR"
    ).items()


def test_ledger_api_reports_an_unbalanced_transaction(march, as_user):
    # given: a transaction written around ledger_post, so it does not sum to zero
    broken = LedgerTransactionFactory.create(currency="USD")
    LedgerEntryFactory.create(transaction=broken, amount=D("1.00"))

    body = as_user(march.admin).get(LEDGER).json()

    assert body["balanced"] is False
    assert body["unbalanced_transactions"] == [broken.pk]


@pytest.mark.parametrize("who", ["vendor", "rival", "designer", "viewer", "operator"])
def test_the_ledger_and_payouts_are_for_admins_only(march, as_user, who):
    client = as_user(march.user(who))
    payout = {"organization": march.forge.pk, "currency": "USD", "amount": "1.00"}

    assert client.get(LEDGER).status_code == 403
    assert client.post(PAYOUTS, payout).status_code == 403
    assert payouts_due(organization=march.forge, currency="USD") == D("41.75")


def test_payout_api_records_a_payout(march, as_user):
    client = as_user(march.admin)

    part = client.post(
        PAYOUTS,
        {"organization": march.forge.pk, "currency": "usd", "amount": "40.00", "memo": "T-1"},
    )
    rest = client.post(PAYOUTS, {"organization": march.forge.pk, "currency": "USD"})

    assert part.status_code == 201, part.json()
    assert {k: part.json()[k] for k in ("currency", "amount", "memo")} == {
        "currency": "USD",
        "amount": "40.00",
        "memo": "T-1",
    }
    assert rest.json()["amount"] == "1.75"
    assert payouts_due(organization=march.forge, currency="USD") == 0
    nothing = client.post(PAYOUTS, {"organization": march.forge.pk, "currency": "USD"})
    assert nothing.status_code == 400
    assert "Nothing is due" in str(nothing.json()["error"]["details"])


def test_payout_api_errors(march, as_user):
    client = as_user(march.admin)
    forge = march.forge.pk

    too_much = client.post(PAYOUTS, {"organization": forge, "currency": "EUR", "amount": "5.61"})
    unknown = client.post(PAYOUTS, {"organization": 99999, "currency": "USD"})
    no_currency = client.post(PAYOUTS, {"organization": forge})

    assert too_much.status_code == 400
    assert "amount" in too_much.json()["error"]["details"]
    assert unknown.status_code == 404
    assert no_currency.status_code == 400
    assert payouts_due(organization=march.forge, currency="EUR") == D("5.60")

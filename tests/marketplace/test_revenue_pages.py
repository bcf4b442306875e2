"""The seller's revenue page and its CSV, the sales page with refunds, and the admins' ledger
page with payouts, through a signed-in browser client."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.marketplace.models import LedgerTransaction, Purchase
from apps.marketplace.services import payouts_due, purchase_refund
from apps.marketplace.services.ledger import (
    ledger_record_refund,
    ledger_record_sale,
)
from tests.conftest import portal_client
from tests.fixtures.market import Market, make_listing, paid_purchase
from tests.marketplace.factories import LedgerEntryFactory, LedgerTransactionFactory
from tests.marketplace.test_revenue import MARCH, March, march_sales, sell

D = Decimal
REVENUE = reverse("marketplace:revenue")
CSV = reverse("marketplace:revenue-csv")
SALES = reverse("marketplace:sales")
LEDGER = reverse("marketplace:ledger")
PAYOUT = reverse("marketplace:payout")


@pytest.fixture
def march(market: Market) -> March:
    """Forge's sales of March 2025 (see tests/marketplace/test_revenue.py)."""
    return march_sales(market)


def flashes(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def chart_of(response: Any) -> dict[str, Any]:
    html = response.content.decode()
    start = html.index('<script id="revenue-chart-data" type="application/json">')
    body = html[start:].split(">", 1)[1].split("</script>", 1)[0]
    return json.loads(body)


# --- Revenue ------------------------------------------------------------------------------------


def test_the_revenue_page_shows_totals_chart_and_tables(march):
    response = portal_client(march.vendor).get(REVENUE, {**MARCH, "period": "week"})

    assert response.status_code == 200
    totals = response.context["totals"]
    assert (totals.sales, totals.gross, totals.refunds, totals.commission, totals.net) == (
        3,
        D("60.00"),
        D("5.00"),
        D("13.25"),
        D("41.75"),
    )
    assert (response.context["paid_out"], response.context["due"]) == (D("10.00"), D("41.75"))
    html = response.content.decode()
    for text in ("Revenue of Forge", "41.75", "payout due now", "Week of 2025-03-03", "FDM hours"):
        assert text in html
    assert "vendor/chartjs/chart.umd.min.js" in html
    chart = chart_of(response)
    # every week of March, the empty ones too; net and commission stacked, refunds a line
    assert chart["labels"] == [
        "2025-02-24",
        "2025-03-03",
        "2025-03-10",
        "2025-03-17",
        "2025-03-24",
        "2025-03-31",
    ]
    assert chart["stacked"] is True
    net, commission, refunds = chart["series"]
    assert net["data"] == ["0.00", "27.00", "14.75", "0.00", "0.00", "0.00"]
    assert commission["data"][1:3] == ["8.00", "5.25"]
    assert (refunds["type"], refunds["data"][2]) == ("line", "5.00")
    assert response.context["tabs"][0][0] == "USD"


def test_currency_tabs_switch_the_figures(march):
    client = portal_client(march.vendor)

    usd = client.get(REVENUE, MARCH)
    eur = client.get(REVENUE, {**MARCH, "currency": "EUR"})

    assert [code for code, _ in usd.context["tabs"]] == ["USD", "EUR"]
    assert "currency=EUR" in usd.context["tabs"][1][1]
    assert eur.context["currency"] == "EUR"
    assert (eur.context["totals"].net, eur.context["due"]) == (D("5.60"), D("5.60"))
    assert [r.label for r in eur.context["by_listing"]] == ["Euro arm"]


def test_one_currency_has_no_tabs_and_sales_today_show_by_default(market: Market):
    sell(market, "template")

    response = portal_client(market.vendor).get(REVENUE)

    assert response.context["tabs"] == []
    assert response.context["totals"].net == D("7.00")
    assert (response.context["query"].end - response.context["query"].start).days == 89
    assert response.context["query"].period == "week"


def test_no_sales_in_the_range_shows_an_empty_state(march):
    response = portal_client(march.vendor).get(
        REVENUE, {"start": "2024-01-01", "end": "2024-01-31"}
    )

    assert response.status_code == 200
    assert "No sales between 2024-01-01 and 2024-01-31 — widen the dates." in (
        response.content.decode()
    )
    assert response.context["chart"] is None
    assert response.context["due"] == D("41.75")  # still owed, whatever the dates


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": "2025-13-01"}, "Start date: Enter a valid date."),
        ({"start": "2025-03-31", "end": "2025-03-01"}, "on or before the end"),
        ({"start": "2020-01-01", "end": "2025-03-01"}, "At most 3 years"),
        ({"period": "fortnight", **MARCH}, "Period: Select a valid choice."),
    ],
)
def test_bad_queries_give_a_message_and_the_defaults(march, query, message):
    response = portal_client(march.vendor).get(REVENUE, query)

    assert response.status_code == 200
    assert any(message in text for text in flashes(response)), flashes(response)
    assert response.context["query"].period in {"week"}


def test_a_bad_period_keeps_the_good_dates(march):
    response = portal_client(march.vendor).get(REVENUE, {"period": "fortnight", **MARCH})

    assert str(response.context["query"].start) == "2025-03-01"
    assert response.context["totals"].net == D("41.75")


def test_revenue_page_denials_and_the_admins_seller_choice(march):
    forge = {"seller": march.forge.pk, **MARCH}

    assert portal_client(march.viewer).get(REVENUE, forge).status_code == 403
    assert portal_client(march.operator).get(REVENUE, forge).status_code == 403
    assert portal_client(march.rival).get(REVENUE, forge).status_code == 404
    assert portal_client(march.designer).get(REVENUE, forge).status_code == 404
    admin = portal_client(march.admin).get(REVENUE, {"seller": march.rival_org.pk, **MARCH})
    assert admin.status_code == 200
    assert admin.context["seller"] == march.rival_org
    assert [o.name for o in admin.context["sellers"]] == ["Forge", "Rival"]
    assert 'name="seller"' in admin.content.decode()


def test_a_seller_without_sales_sees_empty_figures(march):
    response = portal_client(march.designer).get(REVENUE, MARCH)

    assert response.context["seller"].name == "Studio"
    assert "No sales between" in response.content.decode()


def test_the_revenue_page_reads_in_a_fixed_number_of_queries(march):
    client = portal_client(march.vendor)
    client.get(REVENUE, MARCH)  # warm the session
    with CaptureQueriesContext(connection) as few:
        client.get(REVENUE, MARCH)
    for n in range(4):
        extra = make_listing(march.forge, march.vendor, title=f"More {n}")
        sell(march, extra, "designer2")
    with CaptureQueriesContext(connection) as many:
        client.get(REVENUE, {**MARCH, "end": "2026-12-31"})

    assert len(many) == len(few)


# --- CSV ----------------------------------------------------------------------------------------


def test_the_csv_has_periods_then_listings(march):
    response = portal_client(march.vendor).get(CSV, {**MARCH, "period": "month"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == (
        'attachment; filename="revenue-forge-2025-03-01-2025-03-31.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "section",
        "period",
        "listing_id",
        "listing",
        "currency",
        "sales",
        "gross",
        "refunds",
        "commission",
        "net",
    ]
    assert rows[1:3] == [
        ["period", "2025-03-01", "", "", "EUR", "1", "8.00", "0.00", "2.40", "5.60"],
        ["period", "2025-03-01", "", "", "USD", "3", "60.00", "5.00", "13.25", "41.75"],
    ]
    listings = [r for r in rows if r[0] == "listing"]
    assert [r[3] for r in listings] == ["FDM hours", "PLA recipe", "Drone arm", "Euro arm"]
    assert listings[0][2] == str(march.capacity.pk)
    assert listings[0][5:] == ["1", "25.00", "5.00", "4.00", "16.00"]


def test_a_title_is_never_a_spreadsheet_formula(market: Market):
    sly = make_listing(market.forge, market.vendor, title="=HYPERLINK(1)")
    sell(market, sly)

    rows = list(csv.reader(io.StringIO(portal_client(market.vendor).get(CSV).content.decode())))

    assert rows[-1][3] == "'=HYPERLINK(1)"


def test_csv_denials_and_bad_dates(march):
    forge = {"seller": march.forge.pk, **MARCH}

    assert portal_client(march.viewer).get(CSV, forge).status_code == 403
    assert portal_client(march.rival).get(CSV, forge).status_code == 404
    bad = portal_client(march.vendor).get(CSV, {"start": "2025-03-31", "end": "2025-03-01"})
    assert bad.status_code == 302
    assert bad["Location"].startswith(REVENUE + "?")


# --- Sales and refunds --------------------------------------------------------------------------


def refund_url(purchase: Purchase) -> str:
    return reverse("marketplace:sale-refund", args=[purchase.pk])


def test_the_sales_page_lists_sales_with_refund_forms(march):
    purchase_refund(by=march.vendor, purchase=march.sales["template"], reason="All")

    response = portal_client(march.vendor).get(SALES)

    assert response.status_code == 200
    rows = {row["sale"].pk: row for row in response.context["sales"]}
    assert len(rows) == 5
    assert rows[march.sales["template"].pk]["can_refund"] is False  # wholly refunded
    assert rows[march.sales["playbook"].pk]["can_refund"] is True
    html = response.content.decode()
    assert refund_url(march.sales["playbook"]) in html
    assert refund_url(march.sales["template"]) not in html
    assert "Rival&#x27;s" not in html and "Rival's" not in html


def test_the_sales_page_filters_by_listing_and_status(march):
    client = portal_client(march.vendor)

    by_listing = client.get(SALES, {"listing": march.capacity.pk})
    by_status = client.get(SALES, {"status": "partially_refunded"})
    nonsense = client.get(SALES, {"status": "lost", "listing": "x"})

    assert {r["sale"].pk for r in by_listing.context["sales"]} == {
        march.sales["feb"].pk,
        march.sales["capacity"].pk,
    }
    assert [r["sale"].pk for r in by_status.context["sales"]] == [march.sales["capacity"].pk]
    assert len(nonsense.context["sales"]) == 5  # ignored


def test_the_sales_page_has_50_a_page(market: Market):
    for _ in range(51):
        paid_purchase(market.capacity, market.designer)

    first = portal_client(market.vendor).get(SALES)
    second = portal_client(market.vendor).get(SALES, {"page": 2})

    assert (len(first.context["sales"]), len(second.context["sales"])) == (50, 1)
    assert 'rel="next"' in first.content.decode()


def test_the_sales_page_reads_in_a_fixed_number_of_queries(market: Market):
    client = portal_client(market.vendor)
    paid_purchase(market.capacity, market.designer)
    client.get(SALES)
    with CaptureQueriesContext(connection) as few:
        client.get(SALES)
    for _ in range(10):
        paid_purchase(market.capacity, market.designer2)
    with CaptureQueriesContext(connection) as many:
        client.get(SALES)

    assert len(many) == len(few)


@pytest.mark.parametrize("who", ["viewer", "operator"])
def test_the_sales_page_is_forbidden_without_market_sell(march, who):
    client = portal_client(march.user(who))

    assert client.get(SALES).status_code == 403
    refund = client.post(refund_url(march.sales["template"]), {"reason": "x"})
    assert refund.status_code == 403


def test_the_buyer_sees_none_of_the_sellers_sales(march):
    client = portal_client(march.designer)

    assert client.get(SALES).context["sales"] == []
    assert client.post(refund_url(march.sales["template"]), {"reason": "x"}).status_code == 404
    assert (
        portal_client(march.rival)
        .post(refund_url(march.sales["template"]), {"reason": "x"})
        .status_code
        == 404
    )


def test_a_refund_from_the_sales_page(march):
    sale = march.sales["playbook"]
    back = f"{SALES}?status=paid"

    response = portal_client(march.vendor).post(
        refund_url(sale), {"amount": "5.00", "reason": "Scratched", "next": back}, follow=True
    )

    assert response.redirect_chain[-1][0] == back
    assert "Refunded 5.00 USD of sale" in flashes(response)[0]
    sale.refresh_from_db()
    assert (sale.refunded_amount, sale.status) == (D("5.00"), "partially_refunded")


def test_a_full_refund_when_the_amount_is_empty(march):
    sale = march.sales["capacity"]  # 25.00, 5.00 already back

    response = portal_client(march.admin).post(
        refund_url(sale), {"amount": "", "reason": "Cancelled"}, follow=True
    )

    assert "Refunded 20.00 USD" in flashes(response)[0]
    sale.refresh_from_db()
    assert sale.status == Purchase.Status.REFUNDED


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amount": "5.00"}, "reason: This field is required."),
        ({"amount": "25.01", "reason": "x"}, "at most 25.00"),
        ({"amount": "abc", "reason": "x"}, "amount: Enter a number."),
    ],
)
def test_refund_errors_come_back_as_messages(march, data, message):
    sale = march.sales["playbook"]

    response = portal_client(march.vendor).post(
        refund_url(sale), {**data, "next": "https://evil.test/"}, follow=True
    )

    assert response.redirect_chain[-1][0] == SALES  # not somewhere else
    assert any(message in text for text in flashes(response)), flashes(response)
    sale.refresh_from_db()
    assert sale.refunded_amount == 0


# --- Ledger and payouts -------------------------------------------------------------------------


def test_the_ledger_page_for_admins(march):
    response = portal_client(march.admin).get(LEDGER)

    assert response.status_code == 200
    html = response.content.decode()
    assert "The ledger balances" in html
    assert response.context["check"]["balanced"] is True
    dues = [(d.organization.name, d.currency, d.due) for d in response.context["dues"]]
    assert dues == [
        ("Rival", "USD", D("69.30")),
        ("Forge", "USD", D("41.75")),
        ("Forge", "EUR", D("5.60")),
    ]
    assert html.count(f'action="{PAYOUT}"') == 3
    txns = response.context["transactions"]
    assert len(txns) == LedgerTransaction.objects.count()
    sale = next(t for t in txns if t.purchase_id == march.sales["template"].pk)
    assert sale.amount == D("10.00")
    assert len(response.context["balances"]) >= 6


def test_the_ledger_page_warns_of_unbalanced_transactions(march):
    broken = LedgerTransactionFactory.create(currency="USD")
    LedgerEntryFactory.create(transaction=broken, amount=D("1.00"))

    response = portal_client(march.admin).get(LEDGER)

    html = response.content.decode()
    assert "The ledger does not balance." in html
    assert f"Unbalanced transactions: #{broken.pk}." in html
    assert "USD sums to 1.00" in html


def test_the_ledger_shows_the_latest_100_transactions(market: Market):
    for n in range(51):  # a sale and a refund each
        purchase = paid_purchase(market.capacity, market.designer)
        ledger_record_sale(purchase=purchase, by=None)
        ledger_record_refund(
            purchase=purchase, amount=D("1.00"), commission=D("0.20"), by=None, reason=f"r{n}"
        )

    response = portal_client(market.admin).get(LEDGER)

    assert len(response.context["transactions"]) == 100
    assert response.context["transactions"][0].memo.endswith("r50")


@pytest.mark.parametrize("who", ["vendor", "rival", "designer", "viewer", "operator"])
def test_the_ledger_page_and_payouts_are_forbidden_to_others(march, who):
    client = portal_client(march.user(who))

    assert client.get(LEDGER).status_code == 403
    payout = {"organization": march.forge.pk, "currency": "USD", "amount": "1.00"}
    assert client.post(PAYOUT, payout).status_code == 403
    assert payouts_due(organization=march.forge, currency="USD") == D("41.75")


def test_recording_a_payout_from_the_ledger_page(march):
    client = portal_client(march.admin)

    part = client.post(
        PAYOUT,
        {"organization": march.forge.pk, "currency": "USD", "amount": "40", "memo": "T-9"},
        follow=True,
    )
    rest = client.post(PAYOUT, {"organization": march.forge.pk, "currency": "USD"}, follow=True)

    assert part.redirect_chain[-1][0] == LEDGER
    assert flashes(part)[0].startswith("Recorded a payout of 40.00 USD to Forge")
    assert flashes(rest)[0].startswith("Recorded a payout of 1.75 USD to Forge")
    assert payouts_due(organization=march.forge, currency="USD") == 0
    assert [d.organization.name for d in rest.context["dues"]] == ["Rival", "Forge"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"currency": "EUR", "amount": "5.61"}, "at most 5.60"),
        ({"currency": "GBP"}, "Nothing is due to Forge in GBP"),
        ({"currency": "USD", "amount": "-1"}, "amount: Ensure this value is greater than"),
    ],
)
def test_payout_errors_come_back_as_messages(march, data, message):
    response = portal_client(march.admin).post(
        PAYOUT, {"organization": march.forge.pk, **data}, follow=True
    )

    assert any(message in text for text in flashes(response)), flashes(response)
    assert payouts_due(organization=march.forge, currency="EUR") == D("5.60")

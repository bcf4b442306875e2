from __future__ import annotations

import random
import threading
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from apps.core.exceptions import Conflict
from apps.marketplace.models import (
    FakeCharge,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Listing,
    Purchase,
)
from apps.marketplace.selectors.sales import ledger_check
from apps.marketplace.services import (
    payout_record,
    payouts_due,
    purchase_create,
    purchase_refund,
)
from apps.marketplace.services.ledger import (
    UnbalancedPosting,
    account_balance,
    ledger_account,
    ledger_post,
)
from tests.fixtures.market import Market, make_listing


def balance(kind: str, org: Any = None, currency: str = "USD") -> Decimal:
    return account_balance(ledger_account(kind=kind, currency=currency, organization=org))


def buy(market: Market, name: str, who: str = "designer", **kw: Any) -> Purchase:
    kw.setdefault("client_key", f"key-{name}-{who}")
    purchase, _ = purchase_create(by=market.user(who), listing=market.listing(name), **kw)
    return purchase


def test_template_sale_splits_30_percent_commission_and_balances(market: Market):
    purchase = buy(market, "template")

    assert purchase.status == Purchase.Status.PAID
    assert (purchase.amount, purchase.commission) == (Decimal("10.00"), Decimal("3.00"))
    assert purchase.organization == market.designer.organizations.get()
    assert balance(LedgerAccount.Kind.PROVIDER_CLEARING) == Decimal("10.00")
    assert balance(LedgerAccount.Kind.COMMISSION) == Decimal("-3.00")
    assert balance(LedgerAccount.Kind.SELLER_PAYABLE, market.forge) == Decimal("-7.00")
    assert payouts_due(organization=market.forge, currency="USD") == Decimal("7.00")
    assert ledger_check()["balanced"]
    market.template.refresh_from_db()
    assert market.template.sales_count == 1


@pytest.mark.parametrize(
    ("name", "quantity", "amount", "commission"),
    [("playbook", 1, "25.00", "6.25"), ("capacity", 3, "37.50", "7.50")],
)
def test_playbook_and_capacity_commissions(market: Market, name, quantity, amount, commission):
    purchase = buy(market, name, quantity=quantity)

    assert (purchase.amount, purchase.commission) == (Decimal(amount), Decimal(commission))
    payable = Decimal(amount) - Decimal(commission)
    assert payouts_due(organization=market.forge, currency="USD") == payable


def test_commission_rounds_to_cents_and_the_seller_gets_the_rest(market: Market):
    odd = make_listing(market.forge, market.vendor, price="9.99", title="Odd")

    purchase, _ = purchase_create(by=market.designer, listing=odd, client_key="odd")

    assert purchase.commission == Decimal("3.00")  # 2.997 half-up
    assert payouts_due(organization=market.forge, currency="USD") == Decimal("6.99")


def test_commission_rates_come_from_settings(market: Market, settings):
    settings.MARKETPLACE_COMMISSION = {**settings.MARKETPLACE_COMMISSION, "template": "0.15"}

    purchase = buy(market, "template")

    assert purchase.commission == Decimal("1.50")
    assert purchase.commission_rate == Decimal("0.15")


def test_a_retried_request_returns_the_same_purchase_and_charges_once(market: Market):
    first, created = purchase_create(
        by=market.designer, listing=market.template, client_key="retry-1"
    )
    again, created_again = purchase_create(
        by=market.designer, listing=market.template, client_key="retry-1"
    )

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert FakeCharge.objects.count() == 1
    assert LedgerTransaction.objects.filter(kind="sale").count() == 1
    assert payouts_due(organization=market.forge, currency="USD") == Decimal("7.00")


def test_a_client_key_reused_for_another_listing_is_refused(market: Market):
    buy(market, "template", client_key="same")

    with pytest.raises(Conflict, match="already used for a different purchase"):
        purchase_create(by=market.designer, listing=market.playbook, client_key="same")
    assert Purchase.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_make_one_purchase_and_one_charge(market: Market):
    results: list[Any] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def attempt() -> None:
        try:
            start.wait()
            results.append(
                purchase_create(by=market.designer, listing=market.template, client_key="race")
            )
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len({p.pk for p, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert {p.status for p, _ in results} == {Purchase.Status.PAID}
    assert FakeCharge.objects.count() == 1
    assert LedgerTransaction.objects.filter(kind="sale").count() == 1


def test_a_declined_card_stores_a_failed_purchase_and_no_money(market: Market):
    purchase = buy(market, "template", method="fake_declined")

    assert purchase.status == Purchase.Status.FAILED
    assert "declined" in purchase.failure_reason
    assert not LedgerEntry.objects.exists()
    # the same key answers the same; a new key may try again
    assert buy(market, "template", method="fake_ok").status == Purchase.Status.FAILED
    assert buy(market, "template", client_key="second").status == Purchase.Status.PAID


def test_an_unreachable_provider_leaves_the_purchase_pending_for_a_retry(market: Market):
    pending = buy(market, "template", method="fake_unavailable")
    assert pending.status == Purchase.Status.PENDING
    assert "did not answer" in pending.failure_reason

    paid = buy(market, "template", method="fake_ok")

    assert paid.pk == pending.pk
    assert paid.status == Purchase.Status.PAID
    assert FakeCharge.objects.count() == 1


@pytest.mark.parametrize("who", ["viewer", "operator", "admin"])
def test_roles_that_do_not_buy_are_refused(market: Market, who):
    with pytest.raises(PermissionDenied):
        buy(market, "template", who=who)
    assert not Purchase.objects.exists()


def test_nobody_buys_their_own_listing_a_retired_one_or_a_licence_twice(market: Market):
    with pytest.raises(ValidationError, match="your own organization"):
        buy(market, "template", who="vendor")
    retired = make_listing(market.forge, market.vendor, status=Listing.Status.RETIRED, title="Old")
    with pytest.raises(ValidationError, match="not for sale"):
        purchase_create(by=market.designer, listing=retired, client_key="old")
    buy(market, "template")
    with pytest.raises(Conflict, match="already holds a licence"):
        buy(market, "template", who="engineer")  # same organization, another member
    assert Purchase.objects.count() == 1


def test_capacity_hours_must_be_within_the_offer(market: Market):
    for hours in (0, 101, "x"):
        with pytest.raises(ValidationError):
            buy(market, "capacity", quantity=hours, client_key=f"h{hours}")
    with pytest.raises(ValidationError, match="quantity is 1"):
        buy(market, "template", quantity=2)
    # capacity may be bought again
    buy(market, "capacity", quantity=5, client_key="c1")
    buy(market, "capacity", quantity=5, client_key="c2")
    assert Purchase.objects.filter(status="paid").count() == 2


def test_buying_for_an_organization_you_are_not_in_is_refused(market: Market):
    with pytest.raises(PermissionDenied):
        buy(market, "template", organization=market.other)


def test_a_full_refund_reverses_every_entry(market: Market):
    purchase = buy(market, "template")

    refunded = purchase_refund(by=market.vendor, purchase=purchase, reason="Wrong part")

    assert refunded.status == Purchase.Status.REFUNDED
    assert not refunded.is_active
    for kind, org in [
        (LedgerAccount.Kind.PROVIDER_CLEARING, None),
        (LedgerAccount.Kind.COMMISSION, None),
        (LedgerAccount.Kind.SELLER_PAYABLE, market.forge),
    ]:
        assert balance(kind, org) == 0
    assert ledger_check()["balanced"]
    assert FakeCharge.objects.get().refunded == Decimal("10.00")
    market.template.refresh_from_db()
    assert market.template.sales_count == 0
    # the licence may be bought again
    assert buy(market, "template", client_key="again").status == Purchase.Status.PAID


def test_partial_refunds_return_commission_in_proportion_and_end_at_zero(market: Market):
    odd = make_listing(market.forge, market.vendor, price="10.01", title="Odd")
    purchase, _ = purchase_create(by=market.designer, listing=odd, client_key="odd")
    assert purchase.commission == Decimal("3.00")

    purchase = purchase_refund(by=market.admin, purchase=purchase, amount="3.33", reason="Late")
    assert purchase.status == Purchase.Status.PARTIALLY_REFUNDED
    assert purchase.is_active
    assert balance(LedgerAccount.Kind.COMMISSION) == Decimal("-2.00")  # 3.00 - 1.00 (3.33 x .3)
    with pytest.raises(ValidationError, match="at most 6.68"):
        purchase_refund(by=market.admin, purchase=purchase, amount="6.69", reason="x")
    purchase = purchase_refund(by=market.admin, purchase=purchase, reason="Cancelled")

    assert purchase.status == Purchase.Status.REFUNDED
    assert balance(LedgerAccount.Kind.COMMISSION) == 0
    assert balance(LedgerAccount.Kind.SELLER_PAYABLE, market.forge) == 0
    assert balance(LedgerAccount.Kind.PROVIDER_CLEARING) == 0
    assert ledger_check()["balanced"]


@pytest.mark.parametrize("who", ["designer", "rival", "operator"])
def test_only_the_seller_or_an_admin_refunds(market: Market, who):
    purchase = buy(market, "template")

    with pytest.raises(PermissionDenied):
        purchase_refund(by=market.user(who), purchase=purchase, reason="please")
    purchase.refresh_from_db()
    assert purchase.status == Purchase.Status.PAID


def test_a_refund_needs_a_reason_and_a_sensible_amount(market: Market):
    purchase = buy(market, "template")
    with pytest.raises(ValidationError, match="Say why"):
        purchase_refund(by=market.vendor, purchase=purchase, reason=" ")
    for bad in ("0", "-1", "10.01", "1.234", "abc"):
        with pytest.raises(ValidationError):
            purchase_refund(by=market.vendor, purchase=purchase, amount=bad, reason="x")
    assert not LedgerTransaction.objects.filter(kind="refund").exists()


def test_payouts_pay_what_is_due_and_no_more(market: Market):
    buy(market, "template")
    buy(market, "playbook")
    assert payouts_due(organization=market.forge, currency="USD") == Decimal("25.75")

    with pytest.raises(PermissionDenied):
        payout_record(by=market.vendor, organization=market.forge, currency="USD", amount=1)
    with pytest.raises(ValidationError, match="at most 25.75"):
        payout_record(by=market.admin, organization=market.forge, currency="USD", amount="26")
    payout_record(by=market.admin, organization=market.forge, currency="USD", amount="20")
    assert payouts_due(organization=market.forge, currency="USD") == Decimal("5.75")
    payout_record(by=market.admin, organization=market.forge, currency="USD", amount=None)
    assert payouts_due(organization=market.forge, currency="USD") == 0
    with pytest.raises(ValidationError, match="Nothing is due"):
        payout_record(by=market.admin, organization=market.forge, currency="USD", amount=1)
    assert ledger_check()["balanced"]


def test_an_unbalanced_posting_is_never_written(market: Market):
    clearing = ledger_account(kind=LedgerAccount.Kind.PROVIDER_CLEARING, currency="USD")
    commission = ledger_account(kind=LedgerAccount.Kind.COMMISSION, currency="USD")

    with pytest.raises(UnbalancedPosting):
        ledger_post(
            kind="sale",
            currency="USD",
            lines=[(clearing, Decimal("1.00")), (commission, Decimal("-0.99"))],
        )
    assert not LedgerTransaction.objects.exists()


def test_the_ledger_balances_after_any_mix_of_sales_refunds_and_payouts(market: Market):
    # given: listings at awkward prices in two currencies, bought, refunded in parts and paid
    # out at random (a fixed seed, so a failure can be replayed)
    rng = random.Random(8)
    listings = [
        make_listing(
            market.forge,
            market.vendor,
            kind=rng.choice(["template", "playbook", "capacity"]),
            price=f"{rng.randint(50, 99999) / 100:.2f}",
            currency=rng.choice(["USD", "EUR"]),
            title=f"L{i}",
        )
        for i in range(12)
    ]
    buyers = [market.designer, market.designer2]
    purchases: list[Purchase] = []
    for step in range(60):
        action = rng.random()
        if action < 0.5:
            listing = rng.choice(listings)
            qty = rng.randint(1, 7) if listing.kind == "capacity" else 1
            try:
                p, _ = purchase_create(
                    by=rng.choice(buyers), listing=listing, client_key=f"s{step}", quantity=qty
                )
                purchases.append(p)
            except Conflict:  # a licence already held
                pass
        elif action < 0.85 and purchases:
            p = rng.choice(purchases)
            p.refresh_from_db()
            if p.is_active:
                part = p.refundable if rng.random() < 0.4 else None
                amount = (
                    part or f"{max(1, int(p.refundable * 100 * Decimal(rng.random()))) / 100:.2f}"
                )
                purchase_refund(by=market.admin, purchase=p, amount=amount, reason="r")
        else:
            currency = rng.choice(["USD", "EUR"])
            if payouts_due(organization=market.forge, currency=currency) > 0:
                payout_record(
                    by=market.admin, organization=market.forge, currency=currency, amount=None
                )
        # then: after every step
        check = ledger_check()
        assert check["balanced"], (step, check)
    # and each purchase's own postings add up to what it still holds
    for p in purchases:
        p.refresh_from_db()
        kept = LedgerEntry.objects.filter(
            transaction__purchase=p, account__kind=LedgerAccount.Kind.PROVIDER_CLEARING
        ).values_list("amount", flat=True)
        assert sum(kept, Decimal("0")) == p.amount - p.refunded_amount
        if p.status == Purchase.Status.REFUNDED:  # nothing left with anyone
            left = LedgerEntry.objects.filter(transaction__purchase=p).values_list(
                "amount", flat=True
            )
            by_account: dict[int, Decimal] = {}
            for entry in LedgerEntry.objects.filter(transaction__purchase=p):
                by_account[entry.account_id] = by_account.get(entry.account_id, 0) + entry.amount
            assert set(by_account.values()) == {0}, left
    assert LedgerTransaction.objects.filter(kind="refund").exists()
    assert LedgerTransaction.objects.filter(kind="payout").exists()


def test_aggregates_come_back_as_whole_cents_whatever_the_database():
    # SQLite sums decimal columns as floats; every aggregate shown or compared goes through cents
    from apps.marketplace.selectors.sales import cents

    assert str(cents(Decimal("21.8500000000000"))) == "21.85"
    assert cents(0.1 + 0.2 - 0.3) == Decimal("0.00")
    assert cents(None) == Decimal("0.00")

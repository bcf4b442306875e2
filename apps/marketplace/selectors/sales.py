"""Reads of purchases, sales, revenue and the ledger, each scoped to who asks."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDay, TruncMonth, TruncWeek
from django.shortcuts import get_object_or_404
from django.utils import timezone

from apps.jobs.estimates import money
from apps.marketplace.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Listing,
    Purchase,
)
from apps.users.models import Organization
from apps.users.roles import Action, Scope, scope_for

ZERO = Decimal("0.00")
HALF_CENT = Decimal("0.005")
ACTIVE = (Purchase.Status.PAID, Purchase.Status.PARTIALLY_REFUNDED)


def cents(value: Decimal | float | None) -> Decimal:
    """An aggregate as whole cents: PostgreSQL sums decimals exactly, SQLite as floats."""
    return money(value or 0)


def active_purchase_for(*, organization: Organization, listing: Listing) -> Purchase | None:
    """The organization's latest usable purchase of `listing` (paid, not wholly refunded)."""
    return (
        Purchase.objects.filter(organization=organization, listing=listing, status__in=ACTIVE)
        .order_by("-paid_at", "-id")
        .first()
    )


def owned_listing_ids(*, user: Any) -> set[int]:
    """Listings the caller's organizations hold a usable purchase of."""
    return set(
        Purchase.objects.filter(organization__in=_member_orgs(user), status__in=ACTIVE).values_list(
            "listing_id", flat=True
        )
    )


def _member_orgs(user: Any) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user)


def purchase_list(*, user: Any) -> QuerySet[Purchase]:
    """Purchases of the caller's organizations (every purchase for admins)."""
    purchases = Purchase.objects.select_related(
        "listing", "listing__seller", "buyer", "organization"
    )
    if scope_for(user, Action.MARKET_SELL) == Scope.ALL:
        return purchases
    if not getattr(user, "is_authenticated", False):
        return purchases.none()
    return purchases.filter(organization__in=_member_orgs(user))


def purchase_get_for_user(*, user: Any, pk: int) -> Purchase:
    """A purchase the caller's organization made; 404 otherwise, so ids don't leak."""
    return get_object_or_404(purchase_list(user=user), pk=pk)


def seller_orgs(*, user: Any) -> QuerySet[Organization]:
    """The organizations whose sales the caller sees (all that have listed, for admins)."""
    scope = scope_for(user, Action.MARKET_SELL)
    if scope == Scope.ALL:
        return Organization.objects.filter(pk__in=Listing.objects.values("seller_id"))
    if scope == Scope.OWN_ORG:
        return _member_orgs(user)
    return Organization.objects.none()


def sale_list(*, user: Any) -> QuerySet[Purchase]:
    """Purchases of listings the caller's organizations sell (all for admins)."""
    return (
        Purchase.objects.filter(listing__seller__in=seller_orgs(user=user))
        .exclude(status=Purchase.Status.PENDING)
        .select_related("listing", "buyer", "organization")
    )


def sale_get_for_user(*, user: Any, pk: int) -> Purchase:
    return get_object_or_404(sale_list(user=user), pk=pk)


def buy_context(*, user: Any, listing: Listing) -> dict[str, Any]:
    """What templates/marketplace/_buy.html needs: what the caller already holds, whether and
    why not they may buy, a fresh client key and the payment methods."""
    from apps.marketplace.payments import payment_methods

    orgs = list(_member_orgs(user).order_by("pk"))
    owned = next(
        (p for o in orgs if (p := active_purchase_for(organization=o, listing=listing))), None
    )
    reason = ""
    if scope_for(user, Action.MARKET_BUY) is None:
        reason = "Your role does not buy on the marketplace."
    elif not orgs:
        reason = "You belong to no organization to buy for."
    elif listing.status != Listing.Status.PUBLISHED:
        reason = "This listing is not for sale."
    elif any(o.pk == listing.seller_id for o in orgs):
        reason = "This is your own organization's listing."
    elif owned is not None and listing.kind != Listing.Kind.CAPACITY:
        reason = "Your organization already holds a licence."
    return {
        "owned_purchase": owned,
        "can_buy": not reason,
        "cannot_buy_reason": reason,
        "buy_key": uuid.uuid4().hex,
        "payment_methods": payment_methods(),
    }


# --- revenue -------------------------------------------------------------------------------------

PERIODS = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}


@dataclass
class RevenueRow:
    """One period's or one listing's money for a seller, in one currency."""

    label: str
    currency: str
    sales: int = 0
    gross: Decimal = ZERO  # what buyers paid
    refunds: Decimal = ZERO  # what went back to them (positive)
    commission: Decimal = ZERO  # the platform's share after refunds
    net: Decimal = ZERO  # the seller's share after refunds
    key: Any = None


@dataclass
class Revenue:
    organization: Organization
    start: date
    end: date
    period: str
    by_period: list[RevenueRow] = field(default_factory=list)
    by_listing: list[RevenueRow] = field(default_factory=list)
    totals: dict[str, RevenueRow] = field(default_factory=dict)  # per currency
    payouts: dict[str, Decimal] = field(default_factory=dict)  # paid out in the range
    due: dict[str, Decimal] = field(default_factory=dict)  # payouts due now, per currency


def _day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    return (
        datetime.combine(start, time.min, tzinfo=tz),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz),
    )


def seller_revenue(
    *, organization: Organization, start: date, end: date, period: str = "week"
) -> Revenue:
    """Sales, refunds, commission and the seller's net per period and per listing between two
    dates (inclusive), read from the ledger, with payouts made and due. Three queries."""
    trunc = PERIODS[period]
    since, until = _day_bounds(start, end)
    revenue = Revenue(organization=organization, start=start, end=end, period=period)
    seller_txns = LedgerTransaction.objects.filter(
        created_at__gte=since,
        created_at__lt=until,
        kind__in=[LedgerTransaction.Kind.SALE, LedgerTransaction.Kind.REFUND],
        purchase__listing__seller=organization,
    )
    rows = (
        LedgerEntry.objects.filter(transaction__in=seller_txns)
        .annotate(bucket=trunc("transaction__created_at"))
        .values(
            "bucket",
            "listing_id",
            "listing__title",
            "transaction__kind",
            "account__kind",
            "transaction__currency",
        )
        .annotate(total=Sum("amount"))
    )
    periods: dict[tuple[Any, str], RevenueRow] = {}
    listings: dict[tuple[Any, str], RevenueRow] = {}
    for row in rows:
        currency = row["transaction__currency"]
        bucket = row["bucket"]
        stamp = bucket.date() if isinstance(bucket, datetime) else bucket
        targets = [
            periods.setdefault(
                (stamp, currency), RevenueRow(label=str(stamp), currency=currency, key=stamp)
            ),
            listings.setdefault(
                (row["listing_id"], currency),
                RevenueRow(label=row["listing__title"], currency=currency, key=row["listing_id"]),
            ),
            revenue.totals.setdefault(currency, RevenueRow(label="Total", currency=currency)),
        ]
        total = cents(row["total"])  # SQLite sums decimals as floats
        for target in targets:
            _add(target, row["transaction__kind"], row["account__kind"], total)
    counts = (
        LedgerTransaction.objects.filter(pk__in=seller_txns.values("pk"), kind="sale")
        .annotate(bucket=trunc("created_at"))
        .values("bucket", "purchase__listing_id", "currency")
        .annotate(n=Count("pk"))
    )
    for counted in counts:
        bucket = counted["bucket"]
        stamp = bucket.date() if isinstance(bucket, datetime) else bucket
        periods[(stamp, counted["currency"])].sales += counted["n"]
        listings[(counted["purchase__listing_id"], counted["currency"])].sales += counted["n"]
        revenue.totals[counted["currency"]].sales += counted["n"]
    revenue.by_period = sorted(periods.values(), key=lambda r: (r.key, r.currency))
    revenue.by_listing = sorted(listings.values(), key=lambda r: (-r.gross, r.label))
    payable = LedgerEntry.objects.filter(
        account__kind=LedgerAccount.Kind.SELLER_PAYABLE, account__organization=organization
    )
    for acct in payable.values("account__currency").annotate(
        balance=Sum("amount"),
        paid=Sum(
            "amount",
            filter=Q(
                transaction__kind=LedgerTransaction.Kind.PAYOUT,
                transaction__created_at__gte=since,
                transaction__created_at__lt=until,
            ),
        ),
    ):
        revenue.due[acct["account__currency"]] = -cents(acct["balance"])
        revenue.payouts[acct["account__currency"]] = cents(acct["paid"])
    return revenue


def _add(target: RevenueRow, txn_kind: str, account_kind: str, total: Decimal) -> None:
    if account_kind == LedgerAccount.Kind.PROVIDER_CLEARING:
        if txn_kind == LedgerTransaction.Kind.SALE:
            target.gross += total
        else:
            target.refunds -= total
    elif account_kind == LedgerAccount.Kind.COMMISSION:
        target.commission -= total
    elif account_kind == LedgerAccount.Kind.SELLER_PAYABLE:
        target.net -= total


# --- the whole ledger (admins) -------------------------------------------------------------------


def ledger_balances() -> list[dict[str, Any]]:
    """Every account with its balance (sum of its entries)."""
    totals = {
        row["account_id"]: cents(row["total"])
        for row in LedgerEntry.objects.values("account_id").annotate(total=Sum("amount"))
    }
    return [
        {"account": account, "balance": totals.get(account.pk, ZERO)}
        for account in LedgerAccount.objects.select_related("organization")
    ]


def ledger_check() -> dict[str, Any]:
    """The trial balance per currency (must be zero) and any transaction that does not sum to
    zero (must be none)."""
    per_currency = defaultdict(
        Decimal,
        {
            row["account__currency"]: cents(row["total"])
            for row in LedgerEntry.objects.values("account__currency").annotate(total=Sum("amount"))
        },
    )
    unbalanced = list(
        LedgerTransaction.objects.annotate(total=Sum("entries__amount"))
        .filter(Q(total__gte=HALF_CENT) | Q(total__lte=-HALF_CENT))
        .values_list("pk", flat=True)
    )
    return {
        "per_currency": dict(per_currency),
        "unbalanced_transactions": unbalanced,
        "balanced": not unbalanced and all(v == 0 for v in per_currency.values()),
    }

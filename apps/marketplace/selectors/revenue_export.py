"""Reads around the seller's revenue (selectors/sales.py computes it): the date range and seller a
caller may ask for, the periods of a chart, the CSV rows, the admins' latest ledger transactions
and payouts due to every seller."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.utils import timezone

from apps.marketplace.models import LedgerAccount, LedgerEntry, LedgerTransaction, Listing
from apps.marketplace.selectors.sales import Revenue, RevenueRow, cents, seller_orgs
from apps.users.models import Organization

DEFAULT_DAYS = 90
MAX_YEARS = 3
PERIOD_CHOICES = [("day", "Day"), ("week", "Week"), ("month", "Month")]
CSV_HEADER = [
    *("section", "period", "listing_id", "listing", "currency"),
    *("sales", "gross", "refunds", "commission", "net"),
]


def revenue_default_range(*, today: date | None = None) -> tuple[date, date]:
    """The last 90 days, today included."""
    end = today or timezone.localdate()
    return end - timedelta(days=DEFAULT_DAYS - 1), end


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def revenue_range_check(*, start: date, end: date) -> None:
    """Start on or before end, and at most three years apart."""
    if start > end:
        raise ValidationError({"start": ["The start must be on or before the end."]})
    if start < _years_before(end, MAX_YEARS):
        raise ValidationError({"start": [f"At most {MAX_YEARS} years between start and end."]})


def revenue_seller_get_for_user(*, user: Any, pk: int | None) -> Organization | None:
    """The seller whose revenue the caller asked for (404 outside their scope, so ids don't
    leak), or by default the first of their organizations by name (None if they have none)."""
    sellers = seller_orgs(user=user).order_by("name", "pk")
    if pk is None:
        return sellers.first()
    return get_object_or_404(sellers, pk=pk)


def revenue_currencies(revenue: Revenue) -> list[str]:
    """The currencies the seller has money in: sold in the range first (largest gross first),
    then any with payouts due now or made in the range (largest due first)."""
    sold = sorted(revenue.totals.values(), key=lambda row: (-row.gross, row.currency))
    currencies = [row.currency for row in sold]
    zero = Decimal("0.00")
    owed = sorted(
        {*revenue.payouts, *revenue.due} - set(currencies),
        key=lambda c: (-revenue.due.get(c, zero), -revenue.payouts.get(c, zero), c),
    )
    currencies += [c for c in owed if revenue.due.get(c) or revenue.payouts.get(c)]
    return currencies


def revenue_period_starts(*, start: date, end: date, period: str) -> list[date]:
    """The first day of every period from the one holding `start` to the one holding `end`, as
    the database truncates them (weeks start on Monday)."""
    if period == "day":
        first, step = start, timedelta(days=1)
    elif period == "week":
        first, step = start - timedelta(days=start.weekday()), timedelta(days=7)
    else:
        first, step = start.replace(day=1), timedelta(0)
    starts: list[date] = []
    current = first
    while current <= end:
        starts.append(current)
        if period == "month":
            current = (current.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            current += step
    return starts


def _cell(text: str) -> str:
    """A spreadsheet must not run a listing title as a formula."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _amounts(row: RevenueRow) -> list[str]:
    return [str(row.sales)] + [
        str(amount) for amount in (row.gross, row.refunds, row.commission, row.net)
    ]


def revenue_csv_rows(*, revenue: Revenue) -> Iterator[list[str]]:
    """A header, then one row per period and currency, then one per listing and currency."""
    yield CSV_HEADER
    for row in revenue.by_period:
        yield ["period", str(row.key), "", "", row.currency, *_amounts(row)]
    for row in revenue.by_listing:
        yield ["listing", "", str(row.key), _cell(row.label), row.currency, *_amounts(row)]


def revenue_rows_in(rows: list[RevenueRow], currency: str) -> list[RevenueRow]:
    return [row for row in rows if row.currency == currency]


def seller_listings(*, user: Any) -> QuerySet[Listing]:
    """Listings whose sales the caller sees (to filter the sales by)."""
    return (
        Listing.objects.filter(seller__in=seller_orgs(user=user))
        .select_related("seller")
        .order_by("title", "pk")
    )


# --- the admins' ledger --------------------------------------------------------------------------


def ledger_transaction_list(*, limit: int = 100) -> list[LedgerTransaction]:
    """The latest transactions with their entries and each one's amount (its debits). Two
    queries."""
    entries = LedgerEntry.objects.select_related("account", "account__organization").order_by(
        "-amount", "id"
    )
    transactions = list(
        LedgerTransaction.objects.select_related("purchase", "created_by")
        .prefetch_related(Prefetch("entries", queryset=entries))
        .order_by("-created_at", "-id")[:limit]
    )
    for txn in transactions:
        # summed here, not annotated in SQL: SQLite would hand a SUM back as a float (10, not 10.00)
        txn.amount = sum(  # type: ignore[attr-defined]
            (e.amount for e in txn.entries.all() if e.amount > 0), Decimal("0.00")
        )
    return transactions


@dataclass
class PayoutDue:
    organization: Organization
    currency: str
    due: Decimal


def payouts_due_list() -> list[PayoutDue]:
    """Every seller and currency the platform owes money to (a credit balance on the seller's
    payable account), largest first. One query."""
    accounts = (
        LedgerAccount.objects.filter(kind=LedgerAccount.Kind.SELLER_PAYABLE)
        .annotate(balance=Sum("entries__amount"))
        .filter(balance__lte=-Decimal("0.005"))
        .select_related("organization")
    )
    rows = [
        PayoutDue(organization=a.organization, currency=a.currency, due=-cents(a.balance))
        for a in accounts
        if a.organization is not None
    ]
    return sorted(rows, key=lambda r: (-r.due, r.organization.name, r.currency))

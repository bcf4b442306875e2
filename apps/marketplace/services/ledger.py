"""The revenue ledger: double entry, one currency per transaction.

Debits are positive, credits negative, and every transaction's entries sum to zero, so the whole
ledger does too. A sale debits the provider clearing account (money the provider holds for us)
and credits the platform's commission and the seller's payable; a refund posts the same lines
reversed, in proportion; a payout debits the seller's payable and credits clearing. Balances
are never stored: an account's balance is the sum of its entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Sum

from apps.jobs.estimates import money
from apps.marketplace.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Listing,
    Purchase,
)
from apps.users.models import Organization, User

ZERO = Decimal("0.00")
Line = tuple[LedgerAccount, Decimal]


class UnbalancedPosting(Exception):
    """A programming error: a posting whose lines do not sum to zero is never written."""


def ledger_account(
    *, kind: str, currency: str, organization: Organization | None = None
) -> LedgerAccount:
    """The account, created on first use (safe against a concurrent first use)."""
    lookup = {"kind": kind, "currency": currency, "organization": organization}
    account = LedgerAccount.objects.filter(**lookup).first()
    if account is not None:
        return account
    try:
        with transaction.atomic():
            return LedgerAccount.objects.create(**lookup)
    except IntegrityError:
        return LedgerAccount.objects.get(**lookup)


@transaction.atomic
def ledger_post(
    *,
    kind: str,
    currency: str,
    lines: Sequence[Line],
    purchase: Purchase | None = None,
    listing: Listing | None = None,
    memo: str = "",
    by: User | None = None,
) -> LedgerTransaction:
    amounts = [amount for _, amount in lines]
    if sum(amounts, ZERO) != ZERO:
        raise UnbalancedPosting(f"{kind}: lines sum to {sum(amounts, ZERO)}, not zero.")
    if any(amount != amount.quantize(Decimal("0.01")) for amount in amounts):
        raise UnbalancedPosting(f"{kind}: amounts must be whole cents.")
    if any(account.currency != currency for account, _ in lines):
        raise UnbalancedPosting(f"{kind}: every account must be in {currency}.")
    posted = LedgerTransaction.objects.create(
        kind=kind, currency=currency, purchase=purchase, memo=memo[:300], created_by=by
    )
    LedgerEntry.objects.bulk_create(
        LedgerEntry(transaction=posted, account=account, amount=amount, listing=listing)
        for account, amount in lines
        if amount != ZERO
    )
    return posted


def _accounts(purchase: Purchase) -> tuple[LedgerAccount, LedgerAccount, LedgerAccount]:
    currency = purchase.currency
    return (
        ledger_account(kind=LedgerAccount.Kind.PROVIDER_CLEARING, currency=currency),
        ledger_account(kind=LedgerAccount.Kind.COMMISSION, currency=currency),
        ledger_account(
            kind=LedgerAccount.Kind.SELLER_PAYABLE,
            currency=currency,
            organization=purchase.listing.seller,
        ),
    )


def ledger_record_sale(*, purchase: Purchase, by: User | None) -> LedgerTransaction:
    clearing, commission, payable = _accounts(purchase)
    return ledger_post(
        kind=LedgerTransaction.Kind.SALE,
        currency=purchase.currency,
        purchase=purchase,
        listing=purchase.listing,
        memo=f"Sale of {purchase.listing.title} x{purchase.quantity}",
        by=by,
        lines=[
            (clearing, purchase.amount),
            (commission, -purchase.commission),
            (payable, -(purchase.amount - purchase.commission)),
        ],
    )


def ledger_record_refund(
    *, purchase: Purchase, amount: Decimal, commission: Decimal, by: User | None, reason: str
) -> LedgerTransaction:
    """Reverses `amount` of the sale: `commission` of it comes back from the platform, the rest
    from the seller."""
    clearing, platform, payable = _accounts(purchase)
    return ledger_post(
        kind=LedgerTransaction.Kind.REFUND,
        currency=purchase.currency,
        purchase=purchase,
        listing=purchase.listing,
        memo=f"Refund of {purchase.listing.title}: {reason}"[:300],
        by=by,
        lines=[
            (clearing, -amount),
            (platform, commission),
            (payable, amount - commission),
        ],
    )


def ledger_record_payout(
    *, organization: Organization, currency: str, amount: Decimal, by: User | None, memo: str
) -> LedgerTransaction:
    clearing = ledger_account(kind=LedgerAccount.Kind.PROVIDER_CLEARING, currency=currency)
    payable = ledger_account(
        kind=LedgerAccount.Kind.SELLER_PAYABLE, currency=currency, organization=organization
    )
    return ledger_post(
        kind=LedgerTransaction.Kind.PAYOUT,
        currency=currency,
        memo=memo or f"Payout to {organization.name}",
        by=by,
        lines=[(payable, amount), (clearing, -amount)],
    )


def account_balance(account: LedgerAccount) -> Decimal:
    """Debits minus credits: the sum of the account's entries."""
    total = account.entries.aggregate(total=Sum("amount"))["total"]
    return money(total or 0)  # whole cents: SQLite sums decimals as floats

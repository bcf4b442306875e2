"""Buying, refunding and paying sellers out.

A purchase is created before it is charged, under the buyer's client key, so a retried request
(a lost answer, a double click, a mobile client resending) finds the same row and never charges
twice: the provider is asked with the purchase's own idempotency key, and only a pending
purchase is charged, under a row lock.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from apps.core.audit import audit_log
from apps.core.exceptions import Conflict
from apps.core.services import notification_send
from apps.jobs.estimates import money
from apps.marketplace.models import LedgerAccount, LedgerTransaction, Listing, Purchase
from apps.marketplace.payments import PaymentProviderError, payment_provider
from apps.marketplace.selectors.sales import active_purchase_for
from apps.marketplace.services.ledger import (
    account_balance,
    ledger_account,
    ledger_record_payout,
    ledger_record_refund,
    ledger_record_sale,
)
from apps.users.models import Organization, User
from apps.users.roles import Action, Scope, scope_for

CENT = Decimal("0.01")
ACTIVE = (Purchase.Status.PAID, Purchase.Status.PARTIALLY_REFUNDED)


def commission_rate(kind: str) -> Decimal:
    """The platform's share of a sale of this kind of listing (settings, e.g. 0.30)."""
    try:
        rate = Decimal(str(settings.MARKETPLACE_COMMISSION[kind]))
    except (KeyError, InvalidOperation):
        raise ImproperlyConfiguredRate(kind) from None
    if not Decimal("0") <= rate < Decimal("1"):
        raise ImproperlyConfiguredRate(kind)
    return rate


class ImproperlyConfiguredRate(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(f"MARKETPLACE_COMMISSION[{kind!r}] must be a number from 0 to below 1.")


def _buyer_organization(*, by: User, organization: Organization | None) -> Organization:
    orgs = by.organizations.order_by("pk")
    if organization is None:
        first = orgs.first()
        if first is None:
            raise ValidationError(
                {"organization": ["You belong to no organization to buy for; ask an admin."]}
            )
        return first
    if not orgs.filter(pk=organization.pk).exists():
        raise PermissionDenied("You can only buy for an organization you belong to.")
    return organization


def _check_quantity(listing: Listing, quantity: Any) -> int:
    try:
        count = int(quantity)
    except (TypeError, ValueError):
        raise ValidationError({"quantity": ["A whole number."]}) from None
    if listing.kind != Listing.Kind.CAPACITY:
        if count != 1:
            raise ValidationError({"quantity": ["A licence is bought once: quantity is 1."]})
        return 1
    if not listing.min_hours <= count <= listing.max_hours:
        raise ValidationError(
            {"quantity": [f"Between {listing.min_hours} and {listing.max_hours} hours."]}
        )
    return count


def _same_request(purchase: Purchase, listing: Listing, quantity: Any) -> None:
    if purchase.listing_id != listing.pk or str(purchase.quantity) != str(quantity):
        raise Conflict(
            "This client key was already used for a different purchase "
            f"(#{purchase.pk}: {purchase.listing.title} x{purchase.quantity}). "
            "Use a new key for a new purchase.",
            field="client_key",
        )


def purchase_create(
    *,
    by: User,
    listing: Listing,
    client_key: str,
    quantity: int | str = 1,
    method: str = "fake_ok",
    organization: Organization | None = None,
) -> tuple[Purchase, bool]:
    """Buys `listing` for the caller's organization and charges it. Returns the purchase and
    whether this call created it: a repeated `client_key` returns the first call's purchase
    (charging it only if that call never reached the provider). `quantity` may be a form's
    text: it is parsed here, and a ValidationError names it when it is no whole number."""
    key = (client_key or "").strip()
    if not key or len(key) > 64:
        raise ValidationError({"client_key": ["A key of 1 to 64 characters, new per purchase."]})
    existing = Purchase.objects.filter(buyer=by, client_key=key).select_related("listing").first()
    if existing is not None:
        _same_request(existing, listing, quantity)
        return _charge(purchase=existing, method=method, by=by), False
    if scope_for(by, Action.MARKET_BUY) is None:
        raise PermissionDenied("Your role cannot buy on the marketplace.")
    if listing.status != Listing.Status.PUBLISHED:
        raise ValidationError({"listing": ["This listing is not for sale."]})
    org = _buyer_organization(by=by, organization=organization)
    if org.pk == listing.seller_id:
        raise ValidationError({"listing": ["This is your own organization's listing."]})
    count = _check_quantity(listing, quantity)
    if listing.kind != Listing.Kind.CAPACITY:
        owned = active_purchase_for(organization=org, listing=listing)
        if owned is not None:
            raise Conflict(
                f"{org.name} already holds a licence for this listing (purchase #{owned.pk}).",
                field="listing",
            )
    version = listing.versions.order_by("-number").first()
    if version is None:
        raise ValidationError({"listing": ["This listing has no content to sell yet."]})
    rate = commission_rate(listing.kind)
    amount = money(listing.price * count)
    try:
        with transaction.atomic():
            purchase = Purchase.objects.create(
                listing=listing,
                version=version,
                buyer=by,
                organization=org,
                client_key=key,
                quantity=count,
                unit_price=listing.price,
                amount=amount,
                currency=listing.currency,
                commission_rate=rate,
                commission=money(amount * rate),
                provider=payment_provider().name,
            )
    except IntegrityError:  # the same key raced in from a concurrent retry
        existing = Purchase.objects.select_related("listing").get(buyer=by, client_key=key)
        _same_request(existing, listing, count)
        return _charge(purchase=existing, method=method, by=by), False
    return _charge(purchase=purchase, method=method, by=by), True


@transaction.atomic
def _charge(*, purchase: Purchase, method: str, by: User) -> Purchase:
    locked = (
        Purchase.objects.select_for_update(of=("self",))
        .select_related("listing", "listing__seller")
        .get(pk=purchase.pk)
    )
    if locked.status != Purchase.Status.PENDING:
        return locked
    try:
        charge = payment_provider().charge(
            amount=locked.amount,
            currency=locked.currency,
            method=method,
            idempotency_key=f"purchase:{locked.uuid}",
            description=f"{locked.listing.title} x{locked.quantity}",
        )
    except PaymentProviderError as exc:
        # Stays pending: the same client key tries again, and the provider's key makes sure
        # a charge that did go through is not taken twice.
        locked.failure_reason = str(exc)[:300]
        locked.save(update_fields=["failure_reason", "updated_at"])
        return locked
    if charge.status != "succeeded":
        locked.status = Purchase.Status.FAILED
        locked.provider_ref = charge.reference
        locked.failure_reason = (charge.message or "The payment was declined.")[:300]
        locked.save(update_fields=["status", "provider_ref", "failure_reason", "updated_at"])
        return locked
    locked.status = Purchase.Status.PAID
    locked.provider_ref = charge.reference
    locked.failure_reason = ""
    locked.paid_at = timezone.now()
    locked.save(update_fields=["status", "provider_ref", "failure_reason", "paid_at", "updated_at"])
    ledger_record_sale(purchase=locked, by=by)
    _count_sales(locked.listing)
    audit_log(
        action="marketplace.purchase", actor=by, obj=locked, changes={"amount": locked.amount}
    )
    link = reverse("marketplace:revenue")
    for member in locked.listing.seller.members.filter(is_active=True):
        notification_send(
            user=member,
            title=f"Sold: {locked.listing.title}",
            body=f"{locked.organization.name} bought it for {locked.amount} {locked.currency}.",
            link=link,
        )
    return locked


def _count_sales(listing: Listing) -> None:
    listing.sales_count = listing.purchases.filter(status__in=ACTIVE).count()
    listing.save(update_fields=["sales_count", "updated_at"])


def can_refund(*, user: User, purchase: Purchase) -> bool:
    """Admins refund any sale; sellers their organization's sales."""
    scope = scope_for(user, Action.MARKET_SELL)
    if scope == Scope.ALL:
        return True
    return (
        scope == Scope.OWN_ORG
        and user.memberships.filter(organization_id=purchase.listing.seller_id).exists()
    )


def _parse_amount(raw: Any, most: Decimal, what: str) -> Decimal:
    if raw is None or raw == "":
        return most
    try:
        amount = Decimal(str(raw))
    except InvalidOperation:
        raise ValidationError({"amount": ["An amount such as 12.50."]}) from None
    if amount != amount.quantize(CENT, rounding=ROUND_HALF_UP):
        raise ValidationError({"amount": ["At most two decimal places."]})
    if not Decimal("0") < amount <= most:
        raise ValidationError({"amount": [f"More than 0 and at most {most} {what}."]})
    return amount


def _refunded_commission(purchase: Purchase) -> Decimal:
    total = (
        purchase.transactions.filter(kind=LedgerTransaction.Kind.REFUND)
        .filter(entries__account__kind=LedgerAccount.Kind.COMMISSION)
        .aggregate(total=Sum("entries__amount"))["total"]
    )
    return money(total or 0)


@transaction.atomic
def purchase_refund(
    *, by: User, purchase: Purchase, amount: Any = None, reason: str = ""
) -> Purchase:
    """Refunds all that is left of a purchase, or `amount` of it. The commission comes back in
    proportion (the last refund takes whatever is left, so a purchase refunded in parts ends
    with nothing owed either way). A wholly refunded purchase can no longer be used."""
    locked = (
        Purchase.objects.select_for_update(of=("self",))
        .select_related("listing", "listing__seller", "buyer", "organization")
        .get(pk=purchase.pk)
    )
    if not can_refund(user=by, purchase=locked):
        raise PermissionDenied("Only the seller or an admin may refund this purchase.")
    if not locked.is_active:
        raise ValidationError({"status": [f"A {locked.get_status_display().lower()} purchase."]})
    if not reason.strip():
        raise ValidationError({"reason": ["Say why: the buyer sees it."]})
    left = locked.refundable
    refund = _parse_amount(amount, left, "left to refund")
    commission_left = locked.commission - _refunded_commission(locked)
    commission = (
        commission_left
        if refund == left
        else min(commission_left, money(refund * locked.commission_rate))
    )
    try:
        payment_provider().refund(
            reference=locked.provider_ref,
            amount=refund,
            currency=locked.currency,
            idempotency_key=f"refund:{locked.uuid}:{locked.refunded_amount}",
        )
    except PaymentProviderError as exc:
        raise Conflict(f"The payment provider refused the refund: {exc}") from None
    ledger_record_refund(
        purchase=locked, amount=refund, commission=commission, by=by, reason=reason.strip()
    )
    locked.refunded_amount += refund
    locked.status = (
        Purchase.Status.REFUNDED
        if locked.refunded_amount == locked.amount
        else Purchase.Status.PARTIALLY_REFUNDED
    )
    locked.save(update_fields=["refunded_amount", "status", "updated_at"])
    _count_sales(locked.listing)
    audit_log(
        action="marketplace.refund",
        actor=by,
        obj=locked,
        changes={"amount": refund, "reason": reason.strip()},
    )
    notification_send(
        user=locked.buyer,
        title=f"Refunded: {locked.listing.title}",
        body=f"{refund} {locked.currency} back to you. {reason.strip()}",
        link=reverse("marketplace:purchase-detail", args=[locked.pk]),
    )
    return locked


def payouts_due(*, organization: Organization, currency: str) -> Decimal:
    """What the platform owes the seller: the credit balance of its payable account."""
    account = ledger_account(
        kind=LedgerAccount.Kind.SELLER_PAYABLE, currency=currency, organization=organization
    )
    return -account_balance(account)


@transaction.atomic
def payout_record(
    *, by: User, organization: Organization, currency: str, amount: Any, memo: str = ""
) -> LedgerTransaction:
    """Records money paid out to a seller (by bank transfer, outside the platform)."""
    if scope_for(by, Action.MARKET_SELL) != Scope.ALL:
        raise PermissionDenied("Only an admin records payouts.")
    # one payout at a time per seller and currency, so two admins can't both pay what is due
    ledger_account(
        kind=LedgerAccount.Kind.SELLER_PAYABLE, currency=currency, organization=organization
    )
    LedgerAccount.objects.select_for_update().filter(
        kind=LedgerAccount.Kind.SELLER_PAYABLE, currency=currency, organization=organization
    ).get()
    due = payouts_due(organization=organization, currency=currency)
    if due <= 0:
        raise ValidationError({"amount": [f"Nothing is due to {organization.name} in {currency}."]})
    paid = _parse_amount(amount, due, "due")
    posted = ledger_record_payout(
        organization=organization, currency=currency, amount=paid, by=by, memo=memo.strip()
    )
    audit_log(
        action="marketplace.payout",
        actor=by,
        obj=organization,
        changes={"amount": paid, "currency": currency},
    )
    return posted

"""The payment provider interface and the fake provider used in development and tests.

A provider charges and refunds; both calls carry an idempotency key, so a charge asked for again
after a lost answer is not taken twice. `MARKETPLACE_PAYMENT_PROVIDER` names the class; a real
one (a card processor's SDK behind this interface) drops in without touching the services.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string

from apps.marketplace.models import FakeCharge


class PaymentProviderError(Exception):
    """The provider could not be reached or failed; nothing is known to have moved."""


@dataclass(frozen=True)
class Charge:
    reference: str
    status: Literal["succeeded", "declined"]
    message: str = ""


@dataclass(frozen=True)
class Refund:
    reference: str
    amount: Decimal


class PaymentProvider(Protocol):
    name: str

    def charge(
        self, *, amount: Decimal, currency: str, method: str, idempotency_key: str, description: str
    ) -> Charge: ...

    def refund(
        self, *, reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> Refund: ...


# What the fake provider does with each test payment method (like a card processor's test cards).
FAKE_METHODS = {
    "fake_ok": "Test card — succeeds",
    "fake_declined": "Test card — declined",
}


class FakeProvider:
    """Charges succeed or are declined by the method chosen; `fake_unavailable` raises as a
    network failure would. It keeps its own book (FakeCharge) with one charge per idempotency
    key and refuses refunds beyond what was charged, as a real provider does. Its book lives in
    our database, inside the purchase's transaction, so a rolled-back refund is undone there too."""

    name = "fake"

    def charge(
        self, *, amount: Decimal, currency: str, method: str, idempotency_key: str, description: str
    ) -> Charge:
        if method == "fake_unavailable":
            raise PaymentProviderError("The payment provider did not answer. Try again.")
        if method not in FAKE_METHODS:
            return Charge(reference="", status="declined", message=f"Unknown method {method!r}.")
        status: Literal["succeeded", "declined"] = (
            "succeeded" if method == "fake_ok" else "declined"
        )
        try:
            with transaction.atomic():
                charge, _ = FakeCharge.objects.get_or_create(
                    idempotency_key=idempotency_key,
                    defaults={
                        "reference": f"fake_ch_{uuid.uuid4().hex[:20]}",
                        "amount": amount,
                        "currency": currency,
                        "status": status,
                    },
                )
        except IntegrityError:  # the same key raced in from another request
            charge = FakeCharge.objects.get(idempotency_key=idempotency_key)
        if charge.amount != amount or charge.currency != currency:
            raise PaymentProviderError("Idempotency key reused with a different amount.")
        # the row holds one of the two statuses written above (by this call or the first)
        stored: Literal["succeeded", "declined"] = (
            "succeeded" if charge.status == "succeeded" else "declined"
        )
        message = "" if stored == "succeeded" else "The card was declined."
        return Charge(reference=charge.reference, status=stored, message=message)

    def refund(
        self, *, reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> Refund:
        with transaction.atomic():
            charge = FakeCharge.objects.select_for_update().filter(reference=reference).first()
            if charge is None or charge.status != "succeeded":
                raise PaymentProviderError(f"No successful charge {reference!r} to refund.")
            if charge.currency != currency or charge.refunded + amount > charge.amount:
                raise PaymentProviderError("The refund exceeds what is left of the charge.")
            charge.refunded += amount
            charge.save(update_fields=["refunded"])
        return Refund(reference=f"fake_re_{uuid.uuid4().hex[:20]}", amount=amount)


def payment_provider() -> PaymentProvider:
    provider: PaymentProvider = import_string(settings.MARKETPLACE_PAYMENT_PROVIDER)()
    return provider


def payment_methods() -> dict[str, str]:
    """The methods a buyer may choose from, for forms and the API."""
    provider = payment_provider()
    methods = getattr(provider, "methods", None)
    return dict(methods) if methods else dict(FAKE_METHODS)

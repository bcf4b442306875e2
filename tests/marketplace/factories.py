"""Marketplace rows written directly, for tests of what listings, purchases and reviews are used
for: listing_create / listing_publish check who may sell what, purchase_create goes through the
payment provider and the ledger, review_create checks the purchase, and ledger_post balances;
their own tests go through them."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone

from apps.marketplace.models import (
    LedgerEntry,
    LedgerTransaction,
    Listing,
    ListingVersion,
    Purchase,
    PurchaseUse,
    Review,
)
from apps.marketplace.services.ledger import ledger_account
from apps.users.models import Organization
from apps.users.roles import Role
from tests.jobs.factories import JobFactory
from tests.users.factories import OrganizationFactory, UserFactory

PART: dict[str, Any] = {
    "name": "Bracket",
    "material": "PLA",
    "process": "fdm",
    "quantity": 2,
    "size_x_mm": 40.0,
    "size_y_mm": 30.0,
    "size_z_mm": 20.0,
    "volume_cm3": 12.0,
    "complexity": 4,
}
TEMPLATE_CONTENT: dict[str, Any] = {
    "parameters": {
        "scale": {"min": 0.5, "max": 2.0, "default": 1.0},
        "quantity": {"min": 1, "max": 50, "default": 1},
    },
    "parts": [PART],
}
PLAYBOOK_CONTENT: dict[str, Any] = {
    "steps": [
        {
            "title": "Dry the filament",
            "instructions": "4 h at 45 C before loading.",
            "settings": {"dryer_c": 45},
            "checks": ["Moisture below 0.2%"],
        },
        {
            "title": "Print",
            "instructions": "First layer slow.",
            "settings": {"nozzle_c": 210, "bed_c": 60, "first_layer_mm_s": 20},
            "checks": ["First layer adheres", "No stringing"],
        },
    ],
    "materials": ["pla"],
    "processes": ["fdm"],
}
CAPACITY_CONTENT: dict[str, Any] = {"node_kind": "fdm_printer", "min_hours": 1, "max_hours": 100}
CONTENT = {
    Listing.Kind.TEMPLATE: TEMPLATE_CONTENT,
    Listing.Kind.PLAYBOOK: PLAYBOOK_CONTENT,
    Listing.Kind.CAPACITY: CAPACITY_CONTENT,
}


class ListingVersionFactory(factory.django.DjangoModelFactory[ListingVersion]):
    """The listing's next version, with the standard content of its kind unless given."""

    class Meta:
        model = ListingVersion

    listing = factory.SubFactory("tests.marketplace.factories.ListingFactory")
    number = factory.LazyAttribute(lambda o: o.listing.versions.count() + 1)
    content = factory.LazyAttribute(lambda o: copy.deepcopy(CONTENT[Listing.Kind(o.listing.kind)]))
    created_by = factory.SelfAttribute("listing.created_by")


class ListingFactory(factory.django.DjangoModelFactory[Listing]):
    """A published template of a vendor company with its version 1 (`version__content=...`
    for other content); a capacity listing is for FDM printers, under service terms."""

    class Meta:
        model = Listing
        skip_postgeneration_save = True

    seller = factory.SubFactory(OrganizationFactory, kind=Organization.Kind.VENDOR)
    created_by = factory.LazyAttribute(
        lambda o: UserFactory.create(role=Role.VENDOR, organization=o.seller)
    )
    kind = Listing.Kind.TEMPLATE
    status = Listing.Status.PUBLISHED
    title = factory.LazyAttribute(lambda o: f"A {o.kind}")
    price = Decimal("10.00")
    node_kind = factory.LazyAttribute(
        lambda o: "fdm_printer" if o.kind == Listing.Kind.CAPACITY else ""
    )
    licence = factory.LazyAttribute(
        lambda o: (
            Listing.Licence.SERVICE
            if o.kind == Listing.Kind.CAPACITY
            else Listing.Licence.ORGANIZATION
        )
    )
    published_at = factory.LazyAttribute(
        lambda o: timezone.now() if o.status == Listing.Status.PUBLISHED else None
    )
    version = factory.RelatedFactory(ListingVersionFactory, factory_related_name="listing")


class PurchaseFactory(factory.django.DjangoModelFactory[Purchase]):
    """A paid purchase of the listing's latest version by a designer for their organization,
    at 30% commission."""

    class Meta:
        model = Purchase

    listing = factory.SubFactory(ListingFactory)
    version = factory.LazyAttribute(lambda o: o.listing.versions.latest("number"))
    buyer = factory.SubFactory(UserFactory, organization=factory.SubFactory(OrganizationFactory))
    organization = factory.LazyAttribute(lambda o: o.buyer.organizations.first())
    client_key = factory.Sequence(lambda n: f"test-{n}")
    quantity = 1
    unit_price = factory.SelfAttribute("listing.price")
    amount = factory.LazyAttribute(lambda o: o.unit_price * o.quantity)
    currency = factory.SelfAttribute("listing.currency")
    commission_rate = Decimal("0.3")
    commission = factory.LazyAttribute(
        lambda o: (o.amount * o.commission_rate).quantize(Decimal("0.01"))
    )
    status = Purchase.Status.PAID
    provider = "test"
    paid_at = factory.LazyAttribute(
        lambda o: timezone.now() if o.status == Purchase.Status.PAID else None
    )


class PurchaseUseFactory(factory.django.DjangoModelFactory[PurchaseUse]):
    """A job the buyer made with the purchase."""

    class Meta:
        model = PurchaseUse

    purchase = factory.SubFactory(PurchaseFactory)
    job = factory.LazyAttribute(
        lambda o: JobFactory.create(owner=o.purchase.buyer, organization=o.purchase.organization)
    )
    created_by = factory.SelfAttribute("purchase.buyer")


class ReviewFactory(factory.django.DjangoModelFactory[Review]):
    """Five stars from the buyer of the purchase."""

    class Meta:
        model = Review

    purchase = factory.SubFactory(PurchaseFactory)
    listing = factory.SelfAttribute("purchase.listing")
    author = factory.SelfAttribute("purchase.buyer")
    stars = 5


class LedgerTransactionFactory(factory.django.DjangoModelFactory[LedgerTransaction]):
    """A transaction with no entries: add them with LedgerEntryFactory (which need not
    balance, as ledger_post makes them)."""

    class Meta:
        model = LedgerTransaction

    kind = LedgerTransaction.Kind.PAYOUT
    currency = "USD"


class LedgerEntryFactory(factory.django.DjangoModelFactory[LedgerEntry]):
    """A debit to the provider's clearing account in the transaction's currency."""

    class Meta:
        model = LedgerEntry

    transaction = factory.SubFactory(LedgerTransactionFactory)
    account = factory.LazyAttribute(
        lambda o: ledger_account(kind="provider_clearing", currency=o.transaction.currency)
    )
    amount = Decimal("1.00")

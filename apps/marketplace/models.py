"""Listings (templates, playbooks, capacity), their versions and images, purchases paid through
a payment provider, the double-entry revenue ledger, the uses a purchase is put to (jobs,
parts, capacity hours) and reviews. Money is Decimal with its currency stored next to it."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel


def default_currency() -> str:
    return settings.MARKETPLACE_DEFAULT_CURRENCY


class Listing(TimeStampedModel):
    class Kind(models.TextChoices):
        TEMPLATE = "template", "Part template"
        PLAYBOOK = "playbook", "Playbook"
        CAPACITY = "capacity", "Node capacity"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        RETIRED = "retired", "Retired"

    class Licence(models.TextChoices):
        ORGANIZATION = "organization", "Your organization, unlimited jobs"
        COMMERCIAL = "commercial", "Commercial: you may sell what you make with it"
        PERSONAL = "personal", "Personal and evaluation use"
        SERVICE = "service", "Service terms (capacity)"

    seller = models.ForeignKey(
        "users.Organization", on_delete=models.PROTECT, related_name="listings"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    title = models.CharField(max_length=160)
    summary = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True)
    # per licence for templates and playbooks, per hour for capacity
    price = models.DecimalField(
        max_digits=14, decimal_places=2, validators=[MinValueValidator(Decimal("0.50"))]
    )
    currency = models.CharField(max_length=3, default=default_currency)
    licence = models.CharField(max_length=12, choices=Licence.choices, default=Licence.ORGANIZATION)
    # templates: the seller's job template whose parts and parameters each version snapshots
    template = models.ForeignKey(
        "jobs.JobTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # capacity: hours on the seller's approved nodes of this kind
    node_kind = models.CharField(max_length=20, blank=True)
    min_hours = models.PositiveIntegerField(default=1)
    max_hours = models.PositiveIntegerField(default=100)
    # kept by the review services from the reviews (recomputed, never incremented)
    rating_avg = models.DecimalField(max_digits=3, decimal_places=2, null=True, blank=True)
    rating_count = models.PositiveIntegerField(default=0)
    sales_count = models.PositiveIntegerField(default=0)
    published_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-published_at", "-id"]
        indexes = [
            models.Index(fields=["status", "kind"]),
            models.Index(fields=["seller", "status"]),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=Decimal("0.50")), name="listing_price"),
            models.CheckConstraint(
                condition=Q(min_hours__lte=models.F("max_hours")), name="listing_hours"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED

    @property
    def price_unit(self) -> str:
        return "per hour" if self.kind == self.Kind.CAPACITY else "per licence"


class ListingFacet(models.Model):
    """What a listing can be found by: its tags, materials and processes (lower case)."""

    class Facet(models.TextChoices):
        TAG = "tag", "Tag"
        MATERIAL = "material", "Material"
        PROCESS = "process", "Process"

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="facets")
    facet = models.CharField(max_length=10, choices=Facet.choices)
    value = models.CharField(max_length=60)

    class Meta:
        ordering = ["facet", "value"]
        indexes = [models.Index(fields=["facet", "value"])]
        constraints = [
            models.UniqueConstraint(fields=["listing", "facet", "value"], name="unique_facet")
        ]

    def __str__(self) -> str:
        return f"{self.facet}:{self.value}"


class ListingVersion(models.Model):
    """What a buyer gets, frozen: a template's parts and parameters, a playbook's steps, a
    capacity offer's terms. Buyers get every later version of what they bought."""

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    changelog = models.CharField(max_length=500, blank=True)
    content = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["listing_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["listing", "number"], name="unique_listing_version")
        ]

    def __str__(self) -> str:
        return f"{self.listing} v{self.number}"


class ListingImage(models.Model):
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="images")
    image = models.ImageField(upload_to="marketplace/%Y/%m/")
    alt = models.CharField(max_length=200, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["listing_id", "position", "id"]

    def __str__(self) -> str:
        return self.alt or str(self.image.name)


class Purchase(TimeStampedModel):
    """One order: what was bought (listing, version, quantity), by whom for which organization,
    for how much, and what the payment provider said. `client_key` makes a retried request
    return the same purchase instead of charging twice."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending payment"
        PAID = "paid", "Paid"
        FAILED = "failed", "Payment failed"
        PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
        REFUNDED = "refunded", "Refunded"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    listing = models.ForeignKey(Listing, on_delete=models.PROTECT, related_name="purchases")
    version = models.ForeignKey(ListingVersion, on_delete=models.PROTECT, related_name="+")
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="purchases"
    )
    organization = models.ForeignKey(
        "users.Organization", on_delete=models.PROTECT, related_name="purchases"
    )
    client_key = models.CharField(max_length=64)
    quantity = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    unit_price = models.DecimalField(max_digits=14, decimal_places=2)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    commission_rate = models.DecimalField(max_digits=5, decimal_places=4)
    commission = models.DecimalField(max_digits=14, decimal_places=2)
    refunded_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    provider = models.CharField(max_length=40)
    provider_ref = models.CharField(max_length=100, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "status"])]
        constraints = [
            models.UniqueConstraint(fields=["buyer", "client_key"], name="purchase_client_key"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="purchase_amount"),
            models.CheckConstraint(
                condition=Q(refunded_amount__lte=models.F("amount")), name="purchase_refund_le"
            ),
        ]

    def __str__(self) -> str:
        return f"Purchase {self.pk}: {self.listing} x{self.quantity}"

    @property
    def is_active(self) -> bool:
        """Whether the buyer may use it (paid, not wholly refunded)."""
        return self.status in {self.Status.PAID, self.Status.PARTIALLY_REFUNDED}

    @property
    def refundable(self) -> Decimal:
        return self.amount - self.refunded_amount if self.is_active else Decimal("0.00")


class FakeCharge(models.Model):
    """The fake payment provider's own book (development and tests; no payment network). It
    keeps one charge per idempotency key, as a real provider does."""

    idempotency_key = models.CharField(max_length=100, unique=True)
    reference = models.CharField(max_length=40, unique=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=12)  # succeeded / declined
    refunded = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} {self.currency} {self.status}"


class LedgerAccount(models.Model):
    """An account in the revenue ledger. Its balance is the sum of its entries (debits
    positive, credits negative); nothing else stores a balance."""

    class Kind(models.TextChoices):
        # money the payment provider holds for the platform (an asset: debit balance)
        PROVIDER_CLEARING = "provider_clearing", "Payment provider clearing"
        # the platform's commission (income: credit balance)
        COMMISSION = "commission", "Platform commission"
        # what the platform owes a seller (a liability: credit balance = payouts due)
        SELLER_PAYABLE = "seller_payable", "Payable to seller"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    organization = models.ForeignKey(
        "users.Organization",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_accounts",
    )
    currency = models.CharField(max_length=3)

    class Meta:
        ordering = ["kind", "organization_id", "currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "currency"],
                condition=Q(organization__isnull=True),
                name="unique_platform_account",
            ),
            models.UniqueConstraint(
                fields=["kind", "organization", "currency"],
                condition=Q(organization__isnull=False),
                name="unique_org_account",
            ),
        ]

    def __str__(self) -> str:
        owner = f" {self.organization}" if self.organization_id else ""
        return f"{self.get_kind_display()}{owner} ({self.currency})"


class LedgerTransaction(models.Model):
    """One balanced posting: its entries sum to zero."""

    class Kind(models.TextChoices):
        SALE = "sale", "Sale"
        REFUND = "refund", "Refund"
        PAYOUT = "payout", "Payout"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    purchase = models.ForeignKey(
        Purchase, null=True, blank=True, on_delete=models.PROTECT, related_name="transactions"
    )
    currency = models.CharField(max_length=3)
    memo = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class LedgerEntry(models.Model):
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="entries"
    )
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    amount = models.DecimalField(max_digits=14, decimal_places=2)  # debit > 0, credit < 0
    listing = models.ForeignKey(
        Listing, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["transaction_id", "id"]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="entry_not_zero")]

    def __str__(self) -> str:
        return f"{self.account}: {self.amount}"


class PurchaseUse(models.Model):
    """What a purchase was used for: a job made from a template, a part following a playbook,
    a job run on bought capacity (with the hours it takes)."""

    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="uses")
    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="+")
    part = models.ForeignKey(
        "jobs.Part", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    hours = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # a part follows at most one playbook
            models.UniqueConstraint(
                fields=["part"], condition=Q(part__isnull=False), name="one_playbook_per_part"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purchase} -> job {self.job_id}"


class Review(TimeStampedModel):
    purchase = models.OneToOneField(Purchase, on_delete=models.CASCADE, related_name="review")
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="reviews")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    stars = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    text = models.TextField(blank=True)
    reply = models.TextField(blank=True)
    replied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    replied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(stars__gte=1, stars__lte=5), name="review_stars")
        ]

    def __str__(self) -> str:
        return f"{self.stars}* on {self.listing}"

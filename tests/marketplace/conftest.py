from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from apps.marketplace.models import Listing, ListingVersion, Purchase
from apps.users.models import Organization
from apps.users.roles import Role
from tests.factories import OrganizationFactory, UserFactory
from tests.jobs.conftest import shop  # noqa: F401  (the shared fixtures)
from tests.vendors.conftest import fleet  # noqa: F401

PART = {
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
TEMPLATE_CONTENT = {
    "parameters": {
        "scale": {"min": 0.5, "max": 2.0, "default": 1.0},
        "quantity": {"min": 1, "max": 50, "default": 1},
    },
    "parts": [PART],
}
PLAYBOOK_CONTENT = {
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
CAPACITY_CONTENT = {"node_kind": "fdm_printer", "min_hours": 1, "max_hours": 100}


def make_listing(
    seller: Organization,
    by: Any,
    *,
    kind: str = Listing.Kind.TEMPLATE,
    price: str = "10.00",
    status: str = Listing.Status.PUBLISHED,
    content: dict[str, Any] | None = None,
    **fields: Any,
) -> Listing:
    """A listing with version 1, written directly (the listing services have their own tests)."""
    default = {
        Listing.Kind.TEMPLATE: TEMPLATE_CONTENT,
        Listing.Kind.PLAYBOOK: PLAYBOOK_CONTENT,
        Listing.Kind.CAPACITY: CAPACITY_CONTENT,
    }[Listing.Kind(kind)]
    if kind == Listing.Kind.CAPACITY:
        fields.setdefault("node_kind", "fdm_printer")
        fields.setdefault("licence", Listing.Licence.SERVICE)
    listing = Listing.objects.create(
        seller=seller,
        created_by=by,
        kind=kind,
        status=status,
        title=fields.pop("title", f"A {kind}"),
        price=Decimal(price),
        published_at=timezone.now() if status == Listing.Status.PUBLISHED else None,
        **fields,
    )
    ListingVersion.objects.create(
        listing=listing, number=1, content=content or default, created_by=by
    )
    return listing


def paid_purchase(listing: Listing, buyer: Any, *, quantity: int = 1) -> Purchase:
    """A paid purchase written directly, without the provider or the ledger (for tests of what
    a purchase is used for; the purchase services have their own tests)."""
    amount = listing.price * quantity
    return Purchase.objects.create(
        listing=listing,
        version=listing.versions.order_by("-number").first(),
        buyer=buyer,
        organization=buyer.organizations.first(),
        client_key=f"test-{listing.pk}-{buyer.pk}-{Purchase.objects.count()}",
        quantity=quantity,
        unit_price=listing.price,
        amount=amount,
        currency=listing.currency,
        commission_rate=Decimal("0.3"),
        commission=(amount * Decimal("0.3")).quantize(Decimal("0.01")),
        status=Purchase.Status.PAID,
        provider="test",
        paid_at=timezone.now(),
    )


@pytest.fixture
def market(shop: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    """The shop (vendor Forge with printer_a/b and a mill, rival vendor, design org Studio with
    designer, engineer and viewer, operator, admin) plus a second design team with its own
    designer, and one published listing of each kind by Forge."""
    other = OrganizationFactory(name="Other Studio", slug="other-studio")
    buyer2 = UserFactory(role=Role.DESIGNER, email="designer2@f.test", organization=other)
    vendor = shop["vendor"]
    return {
        **shop,
        "other": other,
        "designer2": buyer2,
        "template": make_listing(shop["forge"], vendor, title="Drone arm"),
        "playbook": make_listing(
            shop["forge"], vendor, kind=Listing.Kind.PLAYBOOK, price="25.00", title="PLA recipe"
        ),
        "capacity": make_listing(
            shop["forge"], vendor, kind=Listing.Kind.CAPACITY, price="12.50", title="FDM hours"
        ),
    }

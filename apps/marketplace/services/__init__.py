"""Every write of the marketplace. Listings (services/listings.py; their checks, content and
pictures in services/listing_checks.py, listing_content.py and listing_images.py), purchases,
refunds and payouts (services/purchases.py) over the ledger (services/ledger.py), what purchases
are used for (services/uses.py) and reviews (services/reviews.py)."""

from apps.marketplace.services.listing_images import listing_image_add, listing_image_delete
from apps.marketplace.services.listings import (
    listing_create,
    listing_new_version,
    listing_publish,
    listing_retire,
    listing_update,
)
from apps.marketplace.services.purchases import (
    can_refund,
    commission_rate,
    payout_record,
    payouts_due,
    purchase_create,
    purchase_refund,
)

__all__ = [
    "listing_create",
    "listing_image_add",
    "listing_image_delete",
    "listing_new_version",
    "listing_publish",
    "listing_retire",
    "listing_update",
    "can_refund",
    "commission_rate",
    "payout_record",
    "payouts_due",
    "purchase_create",
    "purchase_refund",
]

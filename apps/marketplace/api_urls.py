from __future__ import annotations

from apps.marketplace.api import listing_images, listings, purchases, revenue, sellers, uses

urlpatterns = [
    *listings.urlpatterns,
    *listing_images.urlpatterns,
    *sellers.urlpatterns,
    *purchases.urlpatterns,
    *revenue.urlpatterns,
    *uses.urlpatterns,
]

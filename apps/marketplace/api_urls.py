from __future__ import annotations

from apps.marketplace.api import listings, purchases, revenue, uses

urlpatterns = [
    *listings.urlpatterns,
    *purchases.urlpatterns,
    *revenue.urlpatterns,
    *uses.urlpatterns,
]

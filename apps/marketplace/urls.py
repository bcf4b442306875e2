from __future__ import annotations

from apps.marketplace.views import listings, purchases, revenue, uses

app_name = "marketplace"

urlpatterns = [
    *listings.urlpatterns,
    *purchases.urlpatterns,
    *revenue.urlpatterns,
    *uses.urlpatterns,
]

from __future__ import annotations

from apps.marketplace.views import listings, purchases, uses

app_name = "marketplace"

urlpatterns = [*listings.urlpatterns, *purchases.urlpatterns, *uses.urlpatterns]

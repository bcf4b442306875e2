from __future__ import annotations

from apps.marketplace.api import listings, purchases, uses

urlpatterns = [*listings.urlpatterns, *purchases.urlpatterns, *uses.urlpatterns]

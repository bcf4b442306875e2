from __future__ import annotations

from django.urls import path

from apps.portal import api

urlpatterns = [
    path("kpis/", api.KpisApi.as_view(), name="kpis"),
    path(
        "reports/sustainability/",
        api.SustainabilityReportApi.as_view(),
        name="sustainability-report",
    ),
]

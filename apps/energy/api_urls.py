from __future__ import annotations

from django.urls import path

from apps.energy import api

urlpatterns = [
    path("energy/sources/", api.SourceListApi.as_view(), name="energy-source-list"),
    path("energy/sources/<int:pk>/", api.SourceDetailApi.as_view(), name="energy-source-detail"),
    path("energy/factors/", api.FactorListApi.as_view(), name="energy-factor-list"),
    path("energy/factors/<str:kind>/", api.FactorDetailApi.as_view(), name="energy-factor-detail"),
    path("energy/sites/", api.SiteListApi.as_view(), name="energy-site-list"),
    path("energy/sites/<int:pk>/cap/", api.SiteCapApi.as_view(), name="energy-site-cap"),
    path(
        "energy/sites/<int:pk>/outlook/", api.SiteOutlookApi.as_view(), name="energy-site-outlook"
    ),
    path("energy/rates/", api.RateListApi.as_view(), name="energy-rate-list"),
    path("energy/rates/import/", api.RateImportApi.as_view(), name="energy-rate-import"),
    path("energy/consumption/", api.ConsumptionListApi.as_view(), name="energy-consumption-list"),
    path(
        "energy/consumption/summary/",
        api.ConsumptionSummaryApi.as_view(),
        name="energy-consumption-summary",
    ),
    path("energy/jobs/<int:pk>/", api.JobEnergyApi.as_view(), name="energy-job"),
    path(
        "energy/nodes/<int:pk>/opportunities/",
        api.NodeOpportunitiesApi.as_view(),
        name="energy-node-opportunities",
    ),
]

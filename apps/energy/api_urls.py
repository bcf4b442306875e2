from __future__ import annotations

from django.urls import path

from apps.energy.api import consumption, opportunities, rates, sites, sources

urlpatterns = [
    path("energy/sources/", sources.SourceListApi.as_view(), name="energy-source-list"),
    path(
        "energy/sources/<int:pk>/", sources.SourceDetailApi.as_view(), name="energy-source-detail"
    ),
    path("energy/factors/", sources.FactorListApi.as_view(), name="energy-factor-list"),
    path(
        "energy/factors/<str:kind>/", sources.FactorDetailApi.as_view(), name="energy-factor-detail"
    ),
    path("energy/sites/", sites.SiteListApi.as_view(), name="energy-site-list"),
    path("energy/sites/<int:pk>/cap/", sites.SiteCapApi.as_view(), name="energy-site-cap"),
    path(
        "energy/sites/<int:pk>/outlook/", sites.SiteOutlookApi.as_view(), name="energy-site-outlook"
    ),
    path("energy/rates/", rates.RateListApi.as_view(), name="energy-rate-list"),
    path("energy/rates/import/", rates.RateImportApi.as_view(), name="energy-rate-import"),
    path(
        "energy/consumption/",
        consumption.ConsumptionListApi.as_view(),
        name="energy-consumption-list",
    ),
    path(
        "energy/consumption/summary/",
        consumption.ConsumptionSummaryApi.as_view(),
        name="energy-consumption-summary",
    ),
    path("energy/jobs/<int:pk>/", consumption.JobEnergyApi.as_view(), name="energy-job"),
    path(
        "energy/nodes/<int:pk>/opportunities/",
        opportunities.NodeOpportunitiesApi.as_view(),
        name="energy-node-opportunities",
    ),
]

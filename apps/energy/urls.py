from __future__ import annotations

from django.urls import path

from apps.energy import views

app_name = "energy"

urlpatterns = [
    path("energy/", views.dashboard_view, name="dashboard"),
    path("energy/nodes/<int:pk>/", views.node_view, name="node"),
    path("energy/nodes/<int:pk>/sources/", views.node_source_add_view, name="node-source-add"),
    path("energy/sites/<int:pk>/", views.site_view, name="site"),
    path("energy/sites/<int:pk>/sources/", views.site_source_add_view, name="site-source-add"),
    path("energy/sites/<int:pk>/cap/", views.site_cap_view, name="site-cap"),
    path("energy/sites/<int:pk>/rates/", views.site_rate_add_view, name="site-rate-add"),
    path(
        "energy/sites/<int:pk>/rates/import/",
        views.site_rates_import_view,
        name="site-rates-import",
    ),
    path("energy/sources/<int:pk>/", views.source_edit_view, name="source-edit"),
    path("energy/sources/<int:pk>/delete/", views.source_delete_view, name="source-delete"),
]

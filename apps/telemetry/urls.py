from django.urls import path

from apps.telemetry import views

app_name = "telemetry"

urlpatterns = [
    path("nodes/", views.node_watch_list_view, name="node-watch-list"),
    path("nodes/<int:pk>/live/", views.node_live_view, name="node-live"),
    path("nodes/site-power/", views.site_power_view, name="site-power"),
]

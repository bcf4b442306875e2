from django.urls import path

from apps.portal import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("designer/", views.designer_home, name="designer"),
    path("vendor/", views.vendor_home, name="vendor"),
    path("ops/", views.ops_home, name="ops"),
    path("engineering/", views.engineer_home, name="engineering"),
    path("ops/audit/", views.audit_log_view, name="audit-log"),
    path("ops/kpis/", views.kpis_view, name="kpis"),
    path("reports/sustainability/", views.sustainability_view, name="sustainability"),
    path("notifications/", views.notifications_view, name="notifications"),
]

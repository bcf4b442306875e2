from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.core import health

api_v1 = [
    path("", include("apps.users.api_urls")),
    path("", include("apps.core.api_urls")),
    path("", include("apps.notify.api_urls")),
    path("", include("apps.vendors.api_urls")),
    path("", include("apps.telemetry.api_urls")),
    path("", include("apps.jobs.api_urls")),
    path("", include("apps.materials.api_urls")),
    path("", include("apps.energy.api_urls")),
    path("", include("apps.twins.api_urls")),
    path("", include("apps.maintenance.api_urls")),
    path("", include("apps.marketplace.api_urls")),
    path("", include("apps.portal.api_urls")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="prometheus-django-metrics"),
    # Django admin's own login asks for no second factor: everyone signs in through ours.
    path("admin/login/", RedirectView.as_view(pattern_name="users:login", query_string=True)),
    path("admin/", admin.site.urls),
    path("account/", include("apps.users.urls")),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start script as a file (no inline script); its page
    # and widgets still style themselves inline. It is a page for people: a signed-out visitor
    # is sent to sign in (and back), not answered with the API's JSON 401.
    path(
        "api/docs/",
        login_required(
            csp_update({"style-src": ["'unsafe-inline'"]})(
                SpectacularSwaggerSplitView.as_view(url_name="api-schema")
            )
        ),
        name="api-docs",
    ),
    path("", include("apps.notify.urls")),
    path("", include("apps.vendors.urls")),
    path("", include("apps.telemetry.urls")),
    path("", include("apps.jobs.urls")),
    path("", include("apps.materials.urls")),
    path("", include("apps.energy.urls")),
    path("", include("apps.twins.urls")),
    path("", include("apps.maintenance.urls")),
    path("", include("apps.marketplace.urls")),
    path("", include("apps.portal.urls")),
]

handler400 = "apps.core.errors.bad_request"
handler403 = "apps.core.errors.permission_denied"
handler404 = "apps.core.errors.not_found"
handler500 = "apps.core.errors.server_error"

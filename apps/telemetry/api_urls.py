from django.urls import path

from apps.telemetry import api

urlpatterns = [
    path("telemetry/", api.TelemetryPointApi.as_view(), name="telemetry-point"),
    path("telemetry/batch/", api.TelemetryBatchApi.as_view(), name="telemetry-batch"),
]

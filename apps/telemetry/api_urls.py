from django.urls import path

from apps.telemetry import api, query_api

urlpatterns = [
    path("telemetry/", api.TelemetryPointApi.as_view(), name="telemetry-point"),
    path("telemetry/batch/", api.TelemetryBatchApi.as_view(), name="telemetry-batch"),
    path(
        "telemetry/nodes/<int:pk>/history/",
        api.TelemetryHistoryImportApi.as_view(),
        name="telemetry-history-import",
    ),
    path("telemetry/latest/", query_api.LatestApi.as_view(), name="telemetry-latest"),
    path(
        "telemetry/nodes/<int:pk>/points/",
        query_api.NodePointsApi.as_view(),
        name="telemetry-points",
    ),
    path(
        "telemetry/nodes/<int:pk>/buckets/",
        query_api.NodeBucketsApi.as_view(),
        name="telemetry-buckets",
    ),
    path(
        "telemetry/nodes/<int:pk>/export.csv",
        query_api.NodeCsvExportApi.as_view(),
        name="telemetry-csv",
    ),
]

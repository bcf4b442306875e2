from django.urls import path

from apps.jobs import api

urlpatterns = [
    path("jobs/", api.JobListApi.as_view(), name="job-list"),
    path("jobs/cad/", api.CadUploadApi.as_view(), name="job-cad-upload"),
    path("jobs/estimate/", api.JobEstimateApi.as_view(), name="job-estimate"),
    path("jobs/<int:pk>/", api.JobDetailApi.as_view(), name="job-detail"),
    path("jobs/<int:pk>/cancel/", api.JobCancelApi.as_view(), name="job-cancel"),
    path("jobs/<int:pk>/priority/", api.JobPriorityApi.as_view(), name="job-priority"),
    path("jobs/<int:pk>/schedule/", api.JobScheduleApi.as_view(), name="job-schedule"),
]

from django.urls import path

from apps.jobs import api

urlpatterns = [
    path("jobs/", api.JobListApi.as_view(), name="job-list"),
    path("jobs/cad/", api.CadUploadApi.as_view(), name="job-cad-upload"),
    path("jobs/estimate/", api.JobEstimateApi.as_view(), name="job-estimate"),
    path("jobs/templates/", api.TemplateListApi.as_view(), name="job-templates"),
    path("jobs/templates/<int:pk>/", api.TemplateDetailApi.as_view(), name="job-template"),
    path(
        "jobs/templates/<int:pk>/instantiate/",
        api.TemplateInstantiateApi.as_view(),
        name="job-template-instantiate",
    ),
    path("jobs/vendor-parts/", api.VendorPartListApi.as_view(), name="vendor-parts"),
    path(
        "jobs/vendor-parts/<int:pk>/accept/",
        api.VendorPartAcceptApi.as_view(),
        name="vendor-part-accept",
    ),
    path(
        "jobs/vendor-parts/<int:pk>/decline/",
        api.VendorPartDeclineApi.as_view(),
        name="vendor-part-decline",
    ),
    path("jobs/<int:pk>/", api.JobDetailApi.as_view(), name="job-detail"),
    path("jobs/<int:pk>/cancel/", api.JobCancelApi.as_view(), name="job-cancel"),
    path("jobs/<int:pk>/priority/", api.JobPriorityApi.as_view(), name="job-priority"),
    path(
        "jobs/<int:pk>/save-template/", api.JobSaveTemplateApi.as_view(), name="job-save-template"
    ),
    path("jobs/<int:pk>/schedule/", api.JobScheduleApi.as_view(), name="job-schedule"),
    path("work/parts/", api.WorkQueueApi.as_view(), name="work-queue"),
    path("work/parts/<int:pk>/start/", api.WorkStartApi.as_view(), name="work-start"),
    path("work/parts/<int:pk>/progress/", api.WorkProgressApi.as_view(), name="work-progress"),
    path("work/parts/<int:pk>/complete/", api.WorkCompleteApi.as_view(), name="work-complete"),
    path("work/parts/<int:pk>/fail/", api.WorkFailApi.as_view(), name="work-fail"),
]

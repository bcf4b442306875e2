from django.urls import path

from apps.jobs.api import jobs, templates, vendor_parts, work

urlpatterns = [
    path("jobs/", jobs.JobListApi.as_view(), name="job-list"),
    path("jobs/cad/", jobs.CadUploadApi.as_view(), name="job-cad-upload"),
    path("jobs/estimate/", jobs.JobEstimateApi.as_view(), name="job-estimate"),
    path("jobs/templates/", templates.TemplateListApi.as_view(), name="job-templates"),
    path("jobs/templates/<int:pk>/", templates.TemplateDetailApi.as_view(), name="job-template"),
    path(
        "jobs/templates/<int:pk>/instantiate/",
        templates.TemplateInstantiateApi.as_view(),
        name="job-template-instantiate",
    ),
    path("jobs/vendor-parts/", vendor_parts.VendorPartListApi.as_view(), name="vendor-parts"),
    path(
        "jobs/vendor-parts/<int:pk>/accept/",
        vendor_parts.VendorPartAcceptApi.as_view(),
        name="vendor-part-accept",
    ),
    path(
        "jobs/vendor-parts/<int:pk>/decline/",
        vendor_parts.VendorPartDeclineApi.as_view(),
        name="vendor-part-decline",
    ),
    path("jobs/<int:pk>/", jobs.JobDetailApi.as_view(), name="job-detail"),
    path("jobs/<int:pk>/cancel/", jobs.JobCancelApi.as_view(), name="job-cancel"),
    path("jobs/<int:pk>/priority/", jobs.JobPriorityApi.as_view(), name="job-priority"),
    path(
        "jobs/<int:pk>/save-template/",
        templates.JobSaveTemplateApi.as_view(),
        name="job-save-template",
    ),
    path("jobs/<int:pk>/schedule/", jobs.JobScheduleApi.as_view(), name="job-schedule"),
    path("work/parts/", work.WorkQueueApi.as_view(), name="work-queue"),
    path("work/bed-clear/", work.WorkBedClearApi.as_view(), name="work-bed-clear"),
    path("work/parts/<int:pk>/start/", work.WorkStartApi.as_view(), name="work-start"),
    path("work/parts/<int:pk>/file/", work.WorkFileApi.as_view(), name="work-file"),
    path("work/parts/<int:pk>/progress/", work.WorkProgressApi.as_view(), name="work-progress"),
    path("work/parts/<int:pk>/complete/", work.WorkCompleteApi.as_view(), name="work-complete"),
    path("work/parts/<int:pk>/fail/", work.WorkFailApi.as_view(), name="work-fail"),
]

from django.urls import path

from apps.jobs import views

app_name = "jobs"

urlpatterns = [
    path("jobs/", views.job_list_view, name="list"),
    path("jobs/new/", views.job_submit_view, name="submit"),
    path("jobs/templates/", views.template_list_view, name="templates"),
    path("jobs/templates/<int:pk>/use/", views.template_use_view, name="template-use"),
    path("jobs/templates/<int:pk>/delete/", views.template_delete_view, name="template-delete"),
    path("jobs/<int:pk>/", views.job_detail_view, name="detail"),
    path("jobs/<int:pk>/live-panels/", views.job_live_panels_view, name="live-panels"),
    path("jobs/<int:pk>/save-template/", views.template_save_view, name="save-template"),
    path("jobs/<int:pk>/cancel/", views.job_cancel_view, name="cancel"),
    path("jobs/<int:pk>/priority/", views.job_priority_view, name="priority"),
    path("vendor/work/", views.vendor_work_view, name="vendor-work"),
    path("vendor/work/history/", views.vendor_work_history_view, name="vendor-work-history"),
    path(
        "vendor/work/parts/<int:pk>/accept/",
        views.vendor_part_accept_view,
        name="vendor-part-accept",
    ),
    path(
        "vendor/work/parts/<int:pk>/decline/",
        views.vendor_part_decline_view,
        name="vendor-part-decline",
    ),
]

from django.urls import path

from apps.jobs import views

app_name = "jobs"

urlpatterns = [
    path("jobs/", views.job_list_view, name="list"),
    path("jobs/new/", views.job_submit_view, name="submit"),
    path("jobs/<int:pk>/", views.job_detail_view, name="detail"),
    path("jobs/<int:pk>/cancel/", views.job_cancel_view, name="cancel"),
    path("jobs/<int:pk>/priority/", views.job_priority_view, name="priority"),
    path("vendor/work/", views.vendor_work_view, name="vendor-work"),
]

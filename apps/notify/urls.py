from django.urls import path

from apps.notify import views

app_name = "notify"

urlpatterns = [
    path("alerts/channels/", views.channel_list_view, name="channels"),
    path("alerts/channels/<int:pk>/", views.channel_detail_view, name="channel"),
    path("alerts/channels/<int:pk>/test/", views.channel_test_view, name="channel-test"),
    path("alerts/channels/<int:pk>/delete/", views.channel_delete_view, name="channel-delete"),
    path("alerts/deliveries/", views.delivery_list_view, name="deliveries"),
    path("alerts/quiet-hours/", views.quiet_hours_view, name="quiet-hours"),
    path("manifest.webmanifest", views.manifest_view, name="manifest"),
    path("sw.js", views.service_worker_view, name="service-worker"),
]

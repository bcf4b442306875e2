from django.urls import path

from apps.core import api_views

urlpatterns = [
    path("notifications/", api_views.NotificationListApi.as_view(), name="notification-list"),
    path(
        "notifications/read/", api_views.NotificationMarkReadApi.as_view(), name="notification-read"
    ),
]

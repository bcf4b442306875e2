from django.urls import path

from apps.maintenance.consumers import MaintenanceConsumer

websocket_urlpatterns = [
    path("ws/maintenance/", MaintenanceConsumer.as_asgi()),
]

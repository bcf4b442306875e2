from django.urls import path

from apps.users.consumers import AuditStreamConsumer

websocket_urlpatterns = [
    path("ws/audit/", AuditStreamConsumer.as_asgi()),
]

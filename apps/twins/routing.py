from django.urls import path

from apps.twins.consumers import TwinConsumer

websocket_urlpatterns = [
    path("ws/twins/<int:pk>/", TwinConsumer.as_asgi()),
]

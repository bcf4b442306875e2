"""Every app's websocket routes, in one list."""

from apps.core.routing import websocket_urlpatterns as core_ws

websocket_urlpatterns = [*core_ws]

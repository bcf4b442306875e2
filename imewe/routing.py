"""Every app's websocket routes, in one list."""

from apps.core.routing import websocket_urlpatterns as core_ws
from apps.jobs.routing import websocket_urlpatterns as jobs_ws
from apps.maintenance.routing import websocket_urlpatterns as maintenance_ws
from apps.telemetry.routing import websocket_urlpatterns as telemetry_ws
from apps.twins.routing import websocket_urlpatterns as twins_ws
from apps.users.routing import websocket_urlpatterns as users_ws

websocket_urlpatterns = [*core_ws, *users_ws, *telemetry_ws, *jobs_ws, *twins_ws, *maintenance_ws]

"""ASGI entry point for daphne: HTTP through Django, websockets through Channels routing."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imewe.settings")
django.setup(set_prefix=False)  # as django.core.asgi.get_asgi_application does

from apps.core.asgi_http import SyncStackASGIHandler  # noqa: E402

# Django's handler with its middleware run as one sync call per request (apps/core/asgi_http.py)
django_asgi_app = SyncStackASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from apps.core import daphne_guard  # noqa: E402
from apps.core.body_limits import BodyLimitMiddleware  # noqa: E402
from apps.telemetry.fast_path import IngestFastPath  # noqa: E402
from apps.users.ws_auth import WebsocketAuthStack  # noqa: E402
from imewe.routing import websocket_urlpatterns  # noqa: E402
from imewe.shutdown import bound_server_shutdown  # noqa: E402

# Request bodies over their route's limit get 413 before they are buffered: inside daphne (which
# otherwise takes in and parses the whole body first) and in front of Django's handler.
daphne_guard.install()

application = ProtocolTypeRouter(
    {
        # Device telemetry POSTs skip Django's middleware stack (apps/telemetry/fast_path.py);
        # every other request, and every refusal, is Django's.
        "http": BodyLimitMiddleware(IngestFastPath(django_asgi_app)),
        # The Origin is checked for session cookies only (apps/users/ws_auth.py): token clients
        # such as mobile apps and machines send none.
        "websocket": WebsocketAuthStack(URLRouter(websocket_urlpatterns)),
    }
)

bound_server_shutdown(settings.SHUTDOWN_TIMEOUT_SECONDS)

# The loaded code and settings never become garbage: move them out of the collector's sight and
# collect less often. Full collections over ~400,000 long-lived objects froze websocket fan-out
# for 140-390 ms every ~1.4 s under load (bench/ws_fanout).
gc.freeze()
gc.set_threshold(50_000, 20, 100)

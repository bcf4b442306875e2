"""Every websocket route is served by the one base consumer (apps.core.sockets.LiveConsumer), so
each gets its refusals, ping/pong, rights re-check and the benchmarked broadcast shortcut, which
skips Channels' per-message database thread hop (bench/ws_fanout). A consumer written on
Channels' own base, or one that replaces the shortcut, fails here."""

from __future__ import annotations

import inspect

import pytest

from apps.core.sockets import LiveConsumer
from imewe.routing import websocket_urlpatterns

ROUTES = {str(route.pattern): route.callback.consumer_class for route in websocket_urlpatterns}


def test_the_routes_are_the_six_live_streams() -> None:
    assert set(ROUTES) == {
        "ws/notifications/",
        "ws/audit/",
        "ws/telemetry/",
        "ws/jobs/<int:pk>/",
        "ws/twins/<int:pk>/",
        "ws/maintenance/",
    }


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_every_route_relays_through_the_base_consumer(path: str) -> None:
    consumer = ROUTES[path]
    assert issubclass(consumer, LiveConsumer)
    assert consumer.dispatch is LiveConsumer.dispatch, "the broadcast shortcut is replaced"
    # ping/pong and the other client messages go through the base's receive_json
    if consumer.receive_json is not LiveConsumer.receive_json:
        assert "super().receive_json(" in inspect.getsource(consumer.receive_json)

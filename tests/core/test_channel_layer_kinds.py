"""Both channel layers a deployment may choose (CHANNELS_LAYER: pubsub, the default, or lists)
carry the live paths end to end over the real Redis: a stored point reaches a telemetry socket
through the ingest process's publisher thread, a notification reaches its user's socket, and
the readiness probe's round trip through the layer answers."""

from __future__ import annotations

import os

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.core.health import check_channel_layer
from apps.core.services import notification_send
from apps.telemetry.services import telemetry_ingest
from apps.users.roles import Role
from tests.fixtures.fleet import Fleet
from tests.telemetry.test_live_websocket import streaming_node
from tests.websockets import ws_open_as

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (CI sets it)"),
]
BACKENDS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "lists": "channels_redis.core.RedisChannelLayer",
}


@pytest.fixture(params=sorted(BACKENDS))
def layer_kind(request, settings):
    """The test run's layer settings (its Redis and prefix) with the other backend swapped in;
    channels builds the layer anew when CHANNEL_LAYERS changes."""
    current = settings.CHANNEL_LAYERS["default"]
    config = {"hosts": current["CONFIG"]["hosts"], "prefix": current["CONFIG"]["prefix"]}
    if request.param == "lists":
        config.update(capacity=1000, expiry=30)
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": BACKENDS[request.param], "CONFIG": config}}
    return request.param


async def test_a_stored_point_reaches_a_telemetry_socket(layer_kind, fleet: Fleet):
    node = await sync_to_async(streaming_node)(fleet)
    ws, connected, code = await ws_open_as(fleet.vendor, f"/ws/telemetry/?nodes={node.pk}")
    assert connected, code
    assert (await ws.receive_json_from())["type"] == "subscribed"
    point = {"node": node.pk, "time": timezone.now().isoformat(), "temperature_c": 41.5}
    await sync_to_async(telemetry_ingest)(points=[point], node_id=node.pk)
    message = await ws.receive_json_from(timeout=5)
    assert (message["type"], message["node"], message["temperature_c"]) == (
        "telemetry",
        node.pk,
        41.5,
    )
    await ws.disconnect()


async def test_a_notification_reaches_its_users_socket_only(layer_kind, make_user):
    user = await sync_to_async(make_user)(Role.DESIGNER)
    other = await sync_to_async(make_user)(Role.DESIGNER)
    mine, connected, _ = await ws_open_as(user, "/ws/notifications/")
    theirs, connected_too, _ = await ws_open_as(other, "/ws/notifications/")
    assert connected and connected_too
    await mine.receive_json_from()  # hello
    await theirs.receive_json_from()
    await sync_to_async(notification_send)(user=user, title=f"Over {layer_kind}")
    assert (await mine.receive_json_from(timeout=5))["title"] == f"Over {layer_kind}"
    assert await theirs.receive_nothing(timeout=0.5)
    await mine.disconnect()
    await theirs.disconnect()


async def test_the_readiness_round_trip_answers(layer_kind):
    assert await sync_to_async(check_channel_layer)() == BACKENDS[layer_kind].rsplit(".")[-1]

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.telemetry.services import telemetry_ingest
from apps.vendors.models import FabricationNode
from apps.vendors.services import node_config_save, node_transition
from tests.fixtures.fleet import Fleet, approved_node
from tests.websockets import ws_open, ws_open_as

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def streaming_node(fleet: Fleet, name="Mill-Live"):
    node = approved_node(fleet, name=name)
    node_config_save(node=node, by=fleet.vendor, config={"a": 1})
    node_transition(node=node, to=FabricationNode.Status.IDLE, by=fleet.vendor, reason="up")
    return node


async def connect(user, nodes: str):
    return await ws_open_as(user, f"/ws/telemetry/?nodes={nodes}")


async def test_vendor_watches_own_node_and_gets_coalesced_newest_values(fleet: Fleet):
    node = await sync_to_async(streaming_node)(fleet)
    ws, connected, _ = await connect(fleet.vendor, str(node.pk))
    assert connected
    assert await ws.receive_json_from() == {"type": "subscribed", "nodes": [node.pk]}

    start = timezone.now() - timedelta(seconds=30)
    # when: 20 requests of one point each arrive within a few milliseconds
    for i in range(20):
        point = {
            "node": node.pk,
            "time": (start + timedelta(seconds=i)).isoformat(),
            "temperature_c": 30 + i,
        }
        await sync_to_async(telemetry_ingest)(points=[point], node_id=node.pk)
    first = await ws.receive_json_from(timeout=2)
    messages = [first]
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        if await ws.receive_nothing(timeout=0.3):
            break
        messages.append(await ws.receive_json_from())
    # then: far fewer messages than points, and the last one carries the newest value
    assert 1 <= len(messages) <= 5
    assert messages[-1]["temperature_c"] == 49
    assert all(m["type"] == "telemetry" and m["node"] == node.pk for m in messages)
    await ws.disconnect()


@pytest.mark.parametrize("who", ["rival", "designer", "viewer"])
async def test_users_without_rights_are_refused(fleet: Fleet, who):
    node = await sync_to_async(streaming_node)(fleet)
    _, connected, code = await connect(fleet.user(who), str(node.pk))
    assert not connected and code == 4403


async def test_one_forbidden_node_refuses_the_whole_subscription(fleet: Fleet):
    mine = await sync_to_async(streaming_node)(fleet, "Mine")
    _, connected, code = await connect(fleet.vendor, f"{mine.pk},999999")
    assert not connected and code == 4403


async def test_anonymous_and_malformed_requests(fleet: Fleet):
    _, connected, code = await ws_open("/ws/telemetry/?nodes=1")
    assert not connected and code == 4401
    _, connected, code = await connect(fleet.vendor, "a,b")
    assert not connected and code == 4400


async def test_operator_sees_nodes_at_their_site(fleet: Fleet):
    node = await sync_to_async(streaming_node)(fleet)
    ws, connected, _ = await connect(fleet.operator, str(node.pk))
    assert connected
    await ws.receive_json_from()
    point = {"node": node.pk, "time": timezone.now().isoformat(), "vibration_mm_s": 2.2}
    await sync_to_async(telemetry_ingest)(points=[point], node_id=node.pk)
    message = await ws.receive_json_from(timeout=2)
    assert message["vibration_mm_s"] == 2.2
    await ws.disconnect()


async def test_the_telemetry_socket_closes_with_4403_when_the_vendor_leaves(fleet: Fleet, settings):
    from apps.users.models import Membership

    settings.WS_RECHECK_SECONDS = 0.05
    node = await sync_to_async(streaming_node)(fleet)
    ws, connected, _ = await connect(fleet.vendor, str(node.pk))
    assert connected and (await ws.receive_json_from())["type"] == "subscribed"
    assert await ws.receive_nothing(timeout=0.3)  # re-checks pass while the right holds
    await sync_to_async(Membership.objects.filter(user=fleet.vendor).delete)()
    close = await ws.receive_close()
    assert close["code"] == 4403 and close["reason"]
    await ws.disconnect()

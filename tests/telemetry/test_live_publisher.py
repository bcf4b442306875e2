"""Ingest tells the websocket fan-out each node's newest point at most once per coalescing
window (apps/telemetry/live.py), through the real Redis channel layer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from channels.layers import get_channel_layer
from django.test import override_settings

from apps.telemetry import live
from apps.telemetry.live import LivePublisher, telemetry_group

pytestmark = pytest.mark.asyncio

BASE = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def payload(node: int, second: int) -> dict:
    return {
        "type": "telemetry",
        "node": node,
        "time": (BASE + timedelta(seconds=second)).isoformat(),
    }


async def drain(layer, channel: str) -> list[dict]:
    received: list[dict] = []
    while True:
        try:
            message = await asyncio.wait_for(layer.receive(channel), timeout=1.0)
        except TimeoutError:
            return received
        received.append(message["payload"])


async def test_a_flood_of_points_becomes_a_few_messages_ending_with_the_newest():
    layer = get_channel_layer()
    assert live._coalescing_layer(layer)  # the tests run the production layer (Redis)
    channel = await layer.new_channel()
    await layer.group_add(telemetry_group(901), channel)
    await layer.group_add(telemetry_group(902), channel)
    publisher = LivePublisher(window_s=0.5)
    for second in range(200):  # 200 requests' newest points within one window or two
        publisher.publish(901, payload(901, second))
    publisher.publish(901, payload(901, 5))  # a late delivery: stored, never shown as live
    publisher.publish(902, payload(902, 0))
    assert await asyncio.to_thread(publisher.flush_now)
    received = await drain(layer, channel)
    of_901 = [p for p in received if p["node"] == 901]
    assert 1 <= len(of_901) <= 3, of_901  # not 201
    assert of_901[-1]["time"] == payload(901, 199)["time"]
    assert [p["time"] for p in received if p["node"] == 902] == [payload(902, 0)["time"]]
    assert publisher.sent == len(received) and publisher.dropped == 0


async def test_each_window_sends_what_changed_since_the_last():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(telemetry_group(903), channel)
    publisher = LivePublisher(window_s=0.05)
    for second in range(3):
        publisher.publish(903, payload(903, second))
        assert await asyncio.to_thread(publisher.flush_now)
        await asyncio.sleep(0.1)  # a quiet gap: each point is sent on its own
    received = await drain(layer, channel)
    assert [p["time"] for p in received] == [payload(903, s)["time"] for s in range(3)]


async def test_without_redis_the_newest_point_is_broadcast_on_the_servers_loop():
    memory = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with override_settings(CHANNEL_LAYERS=memory):
        from channels.layers import channel_layers

        channel_layers.backends.clear()
        layer = get_channel_layer()
        assert not live._coalescing_layer(layer)
        channel = await layer.new_channel()
        await layer.group_add(telemetry_group(904), channel)
        await asyncio.to_thread(live.live_publish, 904, payload(904, 1))
        message = await asyncio.wait_for(layer.receive(channel), timeout=5)
        assert message["payload"]["time"] == payload(904, 1)["time"]
        channel_layers.backends.clear()

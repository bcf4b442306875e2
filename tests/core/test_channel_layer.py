"""The Redis channel layer as configured: an idle channel waits quietly past redis-py's
socket timeout instead of failing (which used to kill idle websockets every 5 s)."""

from __future__ import annotations

import asyncio
import os

import pytest
from channels.layers import get_channel_layer

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (CI sets it)"),
]


async def test_an_idle_receive_outlives_five_seconds_and_still_gets_the_message():
    layer = get_channel_layer()
    name = await layer.new_channel()
    waiting = asyncio.ensure_future(layer.receive(name))
    await asyncio.sleep(6.5)  # past channels-redis's 5 s blocking pop
    assert not waiting.done() or waiting.exception() is None
    await layer.send(name, {"type": "broadcast", "payload": {"n": 1}})
    message = await asyncio.wait_for(waiting, 5)
    assert message["payload"] == {"n": 1}

"""Publishing to websocket groups through the channel layer, after the transaction commits.

Live updates are best effort: the change they announce is already stored, and clients reload
state when they (re)connect. So when the channel layer (Redis) is unreachable a broadcast is
logged and dropped, never an error for the request that made the change; a breaker skips the
layer for a few seconds after a failure, and each attempt is bounded by a timeout, so an outage
does not slow every request down. The first broadcast after that tries again (no restart)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from apps.core.breaker import REDIS_UNREACHABLE, Breaker

logger = logging.getLogger(__name__)

BREAKER_S = 5.0
SEND_TIMEOUT_S = 2.0

breaker = Breaker("channel layer (Redis)", open_s=BREAKER_S)


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


async def _group_send(layer: Any, group: str, message: dict[str, Any]) -> None:
    await asyncio.wait_for(layer.group_send(group, message), timeout=SEND_TIMEOUT_S)


def broadcast(group: str, payload: dict[str, Any]) -> bool:
    """Send `payload` to the websocket group; False when it was dropped (layer unreachable)."""
    layer = get_channel_layer()
    if layer is None:
        return False
    if breaker.is_open():
        logger.debug("channel layer down: dropped a broadcast to %s", group)
        return False
    try:
        async_to_sync(_group_send)(layer, group, {"type": "broadcast", "payload": payload})
    except REDIS_UNREACHABLE as exc:
        breaker.failed(exc)
        return False
    breaker.succeeded()
    return True


def broadcast_on_commit(group: str, payload: dict[str, Any]) -> None:
    # On commit, so nobody hears about a change that was rolled back.
    transaction.on_commit(lambda: broadcast(group, payload))

"""Publishing to websocket groups through the channel layer, after the transaction commits."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def broadcast(group: str, payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(group, {"type": "broadcast", "payload": payload})


def broadcast_on_commit(group: str, payload: dict[str, Any]) -> None:
    # On commit, so nobody hears about a change that was rolled back.
    transaction.on_commit(lambda: broadcast(group, payload))

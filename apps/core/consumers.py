from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.core.realtime import user_group
from apps.core.selectors import notification_list
from apps.core.services import notification_mark_read

CLOSE_UNAUTHENTICATED = 4401


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    """/ws/notifications/: the signed-in user's own notifications, live."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        unread = await database_sync_to_async(
            lambda: notification_list(user=user, unread_only=True).count()
        )()
        await self.send_json({"type": "hello", "user": user.email, "unread": unread})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "mark_read":
            ids = content.get("ids")
            if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
                await self.send_json(
                    {"type": "error", "code": "invalid", "message": "ids must be a list of ints."}
                )
                return
            user = self.scope["user"]
            count = await database_sync_to_async(
                lambda: notification_mark_read(
                    notifications=notification_list(user=user).filter(pk__in=ids)
                )
            )()
            await self.send_json({"type": "marked_read", "count": count})
        else:
            await self.send_json(
                {"type": "error", "code": "unknown_type", "message": f"Unknown type {kind!r}."}
            )

    async def broadcast(self, message: dict[str, Any]) -> None:
        await self.send_json(message["payload"])

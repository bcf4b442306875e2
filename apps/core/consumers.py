from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from apps.core.realtime import user_group
from apps.core.selectors import notification_list
from apps.core.services import notification_mark_read
from apps.core.sockets import LiveConsumer


class NotificationConsumer(LiveConsumer):
    """/ws/notifications/: the signed-in user's own notifications, live (4401 when not signed
    in or when the sign-in ends)."""

    async def start(self, user: Any) -> None:
        await self.join(user_group(user.pk))
        await self.accept()
        unread = await database_sync_to_async(
            lambda: notification_list(user=user, unread_only=True).count()
        )()
        await self.send_json({"type": "hello", "user": user.email, "unread": unread})

    async def receive_message(self, kind: Any, content: Any) -> None:
        if kind != "mark_read":
            await self.error("unknown_type", f"Unknown type {kind!r}.")
            return
        ids = content.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            await self.error("invalid", "ids must be a list of ints.")
            return
        user = self.scope["user"]
        count = await database_sync_to_async(
            lambda: notification_mark_read(
                notifications=notification_list(user=user).filter(pk__in=ids)
            )
        )()
        await self.send_json({"type": "marked_read", "count": count})

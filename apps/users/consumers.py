from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.core.audit import AUDIT_GROUP
from apps.users.roles import Action, user_can

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class AuditStreamConsumer(AsyncJsonWebsocketConsumer):
    """/ws/audit/: new audit entries, live, for those whose role may administer the system."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await database_sync_to_async(user_can)(user, Action.SYSTEM_ADMIN):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.channel_layer.group_add(AUDIT_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(AUDIT_GROUP, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json(
            {"type": "error", "code": "read_only", "message": "This stream only sends."}
        )

    async def broadcast(self, message: dict[str, Any]) -> None:
        await self.send_json(message["payload"])

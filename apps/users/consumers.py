from __future__ import annotations

import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.core.audit import AUDIT_GROUP
from apps.users.models import User
from apps.users.roles import Action, user_can

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
RECHECK_SECONDS = 15.0


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
        self.checked_at = time.monotonic()
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(AUDIT_GROUP, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json(
            {"type": "error", "code": "read_only", "message": "This stream only sends."}
        )

    async def broadcast(self, message: dict[str, Any]) -> None:
        # Rights can be taken away while the socket is open: look again now and then.
        if time.monotonic() - self.checked_at > RECHECK_SECONDS:
            user = self.scope["user"]
            if not await database_sync_to_async(_still_allowed)(user.pk):
                await self.close(code=CLOSE_FORBIDDEN)
                return
            self.checked_at = time.monotonic()
        await self.send_json(message["payload"])


def _still_allowed(user_id: int) -> bool:
    user = User.objects.filter(pk=user_id, is_active=True).first()
    return user is not None and user_can(user, Action.SYSTEM_ADMIN)

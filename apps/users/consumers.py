from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from apps.core.audit import AUDIT_GROUP
from apps.core.sockets import CLOSE_FORBIDDEN, LiveConsumer
from apps.users.roles import Action, user_can


class AuditStreamConsumer(LiveConsumer):
    """/ws/audit/: new audit entries, live, for those whose role may administer the system
    (4401 not signed in, 4403 another role; closed the same way when either ends)."""

    async def start(self, user: Any) -> None:
        if not await database_sync_to_async(user_can)(user, Action.SYSTEM_ADMIN):
            await self.refuse(CLOSE_FORBIDDEN, "Only administrators may follow the audit log.")
            return
        await self.join(AUDIT_GROUP)
        await self.accept()

    @classmethod
    def still_allowed_many(cls, user: Any, sockets: list[Any]) -> list[bool]:
        return [user_can(user, Action.SYSTEM_ADMIN)] * len(sockets)

    async def receive_message(self, kind: Any, content: Any) -> None:
        await self.error("read_only", "This stream only sends.")

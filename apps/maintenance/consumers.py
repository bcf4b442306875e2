from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.maintenance.services.realtime import ALL_GROUP, org_group
from apps.users.models import Membership
from apps.users.roles import Action, Role, Scope, scope_for

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


def groups_for(user: Any) -> list[str]:
    """Admins hear the whole fleet; vendors their company's nodes; operators their sites'.
    Other roles maintain nothing and are refused."""
    scope = scope_for(user, Action.TICKET_MANAGE)
    if scope == Scope.ALL:
        return [ALL_GROUP]
    role = {Scope.OWN_NODES: Role.VENDOR, Scope.OPERATED: Role.OPERATOR}.get(scope)  # type: ignore[arg-type]
    if role is None:
        return []
    orgs = Membership.objects.filter(user=user).values_list("organization_id", flat=True)
    return [org_group(org) for org in orgs]


class MaintenanceConsumer(AsyncJsonWebsocketConsumer):
    """/ws/maintenance/ — live alerts, tickets, windows and node health for the nodes the user
    maintains (session or ?token=<JWT>). Events: alert.opened|updated|resolved,
    ticket.opened|updated, window.planned|started|completed, node.health|online|offline."""

    groups_joined: list[str]

    async def connect(self) -> None:
        self.groups_joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        groups = await database_sync_to_async(groups_for)(user)
        if not groups:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = groups
        await self.accept()
        await self.send_json({"type": "hello", "groups": len(groups)})

    async def disconnect(self, code: int) -> None:
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message["type"] == "broadcast":
            await self.broadcast(message)
        else:
            await super().dispatch(message)

    async def broadcast(self, message: dict[str, Any]) -> None:
        await self.send_json(message["payload"])

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from apps.core.sockets import CLOSE_FORBIDDEN, LiveConsumer
from apps.maintenance.services.realtime import ALL_GROUP, org_group
from apps.users.models import Membership
from apps.users.roles import Action, Role, Scope, scope_for


def groups_for(user: Any) -> list[str]:
    """Admins hear the whole fleet; vendors their company's nodes; operators their sites'.
    Other roles maintain nothing and are refused."""
    scope = scope_for(user, Action.TICKET_MANAGE)
    if scope == Scope.ALL:
        return [ALL_GROUP]
    roles: dict[Scope | None, Role] = {Scope.OWN_NODES: Role.VENDOR, Scope.OPERATED: Role.OPERATOR}
    role = roles.get(scope)
    if role is None:
        return []
    orgs = Membership.objects.filter(user=user).values_list("organization_id", flat=True)
    return [org_group(org) for org in orgs]


class MaintenanceConsumer(LiveConsumer):
    """/ws/maintenance/ — live alerts, tickets, windows and node health for the nodes the user
    maintains (session or ?token=<JWT>). Events: alert.opened|updated|resolved,
    ticket.opened|updated, window.planned|started|completed, node.health|online|offline.
    Closes with 4403 when the caller no longer maintains every group it joined."""

    async def start(self, user: Any) -> None:
        groups = await database_sync_to_async(groups_for)(user)
        if not groups:
            await self.refuse(CLOSE_FORBIDDEN, "Your role maintains no nodes.")
            return
        await self.join(*groups)
        await self.accept()
        await self.send_json({"type": "hello", "groups": len(groups)})

    @classmethod
    def still_allowed_many(cls, user: Any, sockets: list[Any]) -> list[bool]:
        groups = set(groups_for(user))
        return [groups.issuperset(socket.groups_joined) for socket in sockets]

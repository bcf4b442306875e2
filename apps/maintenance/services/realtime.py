"""Live maintenance events (alerts, tickets, health) go to the admins' group and to the groups
of the node's vendor and operating site; /ws/maintenance/ joins a user to the groups they may
hear."""

from __future__ import annotations

from typing import Any

from apps.core.realtime import broadcast_on_commit
from apps.vendors.models import FabricationNode

ALL_GROUP = "maintenance.all"


def org_group(org_id: int) -> str:
    return f"maintenance.org.{org_id}"


def maintenance_groups(node: FabricationNode) -> list[str]:
    groups = [ALL_GROUP, org_group(node.vendor_id)]
    if node.site_id is not None:
        groups.append(org_group(node.site_id))
    return groups


def maintenance_broadcast(node: FabricationNode, payload: dict[str, Any]) -> None:
    for group in maintenance_groups(node):
        broadcast_on_commit(group, payload)

from __future__ import annotations

from celery import shared_task

from apps.vendors.node_commands import node_commands_expire


@shared_task
def node_commands_expire_task() -> int:
    """Remote commands past their deadline become expired, with the reason, whether or not
    anyone opens the node's page and whether or not its gateway ever polls again."""
    return node_commands_expire()

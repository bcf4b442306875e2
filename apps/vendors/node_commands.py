"""Remote commands to machines through their gateway: issuing (role matrix: NODE_COMMAND, on
the nodes in the caller's scope; only what the node's device map declares), delivery to the
gateway when it polls, its acknowledgement, and expiry. Every change of a command is in the
audit log (NodeCommand is tracked), who issued it included.

What a node allows lives in the `edge` section of its configuration profile:

    "commands": {"stop": {"node_id": "ns=2;s=Machine1.Job.Running", "type": "boolean",
                          "value": false}},
    "setpoints": {"load_kw": {"node_id": "ns=2;s=Machine1.Job.LoadKw", "type": "double",
                              "low": 0, "high": 50}}

(Modbus: `"address": 40, "type": "uint16", "scale": 0.1` instead of node_id; edge/commands.py.)
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.core.exceptions import Conflict
from apps.users.models import User
from apps.users.roles import Action
from apps.vendors.models import FabricationNode, Gateway, NodeCommand
from apps.vendors.selectors import node_config_current, nodes_in_scope

DEFAULT_TTL_S = 600
MIN_TTL_S, MAX_TTL_S = 5, 24 * 3600
MAX_DELIVERED_PER_POLL = 50


def node_can_command(*, user: User, node: FabricationNode) -> bool:
    return nodes_in_scope(user=user, action=Action.NODE_COMMAND).filter(pk=node.pk).exists()


def node_command_allowed(*, node: FabricationNode) -> dict[str, Any]:
    """{"commands": {...}, "setpoints": {...}} from the node's current edge section."""
    current = node_config_current(node=node)
    edge = current.config.get("edge") if current and isinstance(current.config, dict) else None
    edge = edge if isinstance(edge, dict) else {}
    commands = edge.get("commands") if isinstance(edge.get("commands"), dict) else {}
    setpoints = edge.get("setpoints") if isinstance(edge.get("setpoints"), dict) else {}
    return {"commands": commands, "setpoints": setpoints}


def _bounds(spec: Any) -> tuple[float, float]:
    low = spec.get("low") if isinstance(spec, dict) else None
    high = spec.get("high") if isinstance(spec, dict) else None
    return (
        float(low) if isinstance(low, int | float) else -math.inf,
        float(high) if isinstance(high, int | float) else math.inf,
    )


@transaction.atomic
def node_command_issue(
    *,
    node: FabricationNode,
    by: User,
    kind: str,
    setpoint: str = "",
    value: float | None = None,
    ttl_s: int = DEFAULT_TTL_S,
) -> NodeCommand:
    if not node_can_command(user=by, node=node):
        raise PermissionDenied("Your role may not send commands to this machine.")
    if kind not in NodeCommand.Kind.values:
        raise ValidationError({"kind": f"One of: {', '.join(NodeCommand.Kind.values)}."})
    if not MIN_TTL_S <= ttl_s <= MAX_TTL_S:
        raise ValidationError({"ttl_s": f"Give {MIN_TTL_S}-{MAX_TTL_S} seconds."})
    if node.gateway_id is None:
        raise Conflict("No managed gateway serves this machine: nothing can carry the command.")
    allowed = node_command_allowed(node=node)
    if kind == NodeCommand.Kind.SETPOINT:
        spec = allowed["setpoints"].get(setpoint)
        if spec is None:
            names = ", ".join(sorted(allowed["setpoints"])) or "none"
            raise ValidationError(
                {"setpoint": f"Not writable on this machine; its device map allows: {names}."}
            )
        if value is None or not math.isfinite(value):
            raise ValidationError({"value": "Give the setpoint's value (a finite number)."})
        low, high = _bounds(spec)
        if not low <= value <= high:
            raise ValidationError({"value": f"{setpoint} takes {low:g} to {high:g}."})
    else:
        if setpoint or value is not None:
            raise ValidationError({"setpoint": f"A {kind} command takes no setpoint or value."})
        if kind not in allowed["commands"]:
            names = ", ".join(sorted(allowed["commands"])) or "none"
            raise ValidationError(
                {"kind": f"This machine's device map has no {kind} command; it has: {names}."}
            )
    return NodeCommand.objects.create(
        node=node,
        gateway_id=node.gateway_id,
        kind=kind,
        setpoint=setpoint,
        value=value,
        issued_by=by,
        expires_at=timezone.now() + timedelta(seconds=ttl_s),
    )


def node_commands_expire(*, node_ids: list[int] | None = None) -> int:
    """Open commands past their deadline become expired (one save each, so it is audited)."""
    due = NodeCommand.objects.filter(
        status__in=[NodeCommand.Status.PENDING, NodeCommand.Status.DELIVERED],
        expires_at__lte=timezone.now(),
    )
    if node_ids is not None:
        due = due.filter(node_id__in=node_ids)
    count = 0
    for command in due:
        was_delivered = command.status == NodeCommand.Status.DELIVERED
        command.status = NodeCommand.Status.EXPIRED
        command.outcome = (
            "The gateway did not acknowledge it in time."
            if was_delivered
            else "The gateway did not fetch it in time (offline?)."
        )
        command.finished_at = timezone.now()
        command.save(update_fields=["status", "outcome", "finished_at", "updated_at"])
        count += 1
    return count


def node_command_list(*, node: FabricationNode) -> QuerySet[NodeCommand]:
    node_commands_expire(node_ids=[node.pk])
    return node.commands.select_related("issued_by")


@transaction.atomic
def gateway_commands_take(*, gateway: Gateway) -> list[NodeCommand]:
    """The pending commands for the machines `gateway` serves now, oldest first, marked
    delivered. Each is handed over once (a gateway that dies before applying one leaves it
    delivered until it expires: a stop is never replayed behind the operator's back)."""
    node_ids = list(gateway.nodes.values_list("pk", flat=True))
    node_commands_expire(node_ids=node_ids)
    pending = list(
        NodeCommand.objects.select_for_update(skip_locked=True)
        .filter(node_id__in=node_ids, status=NodeCommand.Status.PENDING)
        .order_by("created_at", "id")[:MAX_DELIVERED_PER_POLL]
    )
    now = timezone.now()
    for command in pending:
        command.status = NodeCommand.Status.DELIVERED
        command.delivered_at = now
        command.gateway = gateway
        command.save(update_fields=["status", "delivered_at", "gateway", "updated_at"])
    return pending


@transaction.atomic
def gateway_command_acknowledge(
    *, gateway: Gateway, command_id: int, ok: bool, outcome: str
) -> NodeCommand:
    command = (
        NodeCommand.objects.select_for_update()
        .filter(pk=command_id, gateway=gateway, node__gateway=gateway)
        .first()
    )
    if command is None:
        raise PermissionDenied("No such command for this gateway's machines.")
    # a late acknowledgement still says what happened to the machine: it replaces the timeout
    late = command.status == NodeCommand.Status.EXPIRED and command.delivered_at is not None
    if command.status != NodeCommand.Status.DELIVERED and not late:
        raise Conflict(
            f"This command is {command.get_status_display().lower()}; "
            "only a delivered one is acknowledged."
        )
    command.status = NodeCommand.Status.SUCCEEDED if ok else NodeCommand.Status.FAILED
    command.outcome = outcome.strip() or ("Applied." if ok else "Failed.")
    command.outcome = (
        f"(acknowledged after the timeout) {command.outcome}" if late else command.outcome
    )[:500]
    command.finished_at = timezone.now()
    command.save(update_fields=["status", "outcome", "finished_at", "updated_at"])
    return command

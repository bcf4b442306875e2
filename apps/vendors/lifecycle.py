"""The node lifecycle: which status may follow which (a pure table, no database)."""

from __future__ import annotations

from apps.vendors.models import FabricationNode

S = FabricationNode.Status

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    S.REGISTERED: frozenset({S.CONFIGURED, S.DECOMMISSIONED}),
    S.CONFIGURED: frozenset({S.IDLE, S.DECOMMISSIONED}),
    S.IDLE: frozenset({S.ASSIGNED, S.MAINTENANCE, S.DECOMMISSIONED}),
    S.ASSIGNED: frozenset({S.IDLE, S.EXECUTING, S.DECOMMISSIONED}),
    S.EXECUTING: frozenset({S.ASSIGNED}),
    S.MAINTENANCE: frozenset({S.IDLE, S.DECOMMISSIONED}),
    S.DECOMMISSIONED: frozenset(),
}
# Operators of a site may take their machines out of service and back, nothing else.
OPERATOR_TRANSITIONS = frozenset({(S.IDLE, S.MAINTENANCE), (S.MAINTENANCE, S.IDLE)})
# Statuses in which a node may take work and stream telemetry (it must also be approved).
ACTIVE_STATUSES = frozenset({S.IDLE, S.ASSIGNED, S.EXECUTING, S.MAINTENANCE, S.CONFIGURED})


def can_transition(current: str, target: str) -> bool:
    return target in ALLOWED_TRANSITIONS.get(current, frozenset())

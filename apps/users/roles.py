"""The permission matrix: the one place that says which role may do what, and how far.

`Action` x `Role` -> `Scope`. Django permissions `users.<action>` are generated from it and
synced into one Group per role (`roles_sync`, run after every migrate and by
`manage.py sync_roles`). Code asks `user_can(user, action)` for the yes/no and `scope_for(user,
action)` for how far; each app's selectors turn a scope into a queryset filter for its objects
(e.g. jobs: OWN_ORG -> `organization__memberships__user=user`).
"""

from __future__ import annotations

from typing import Any

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    DESIGNER = "designer", "Designer"
    ENGINEER = "engineer", "Engineer"
    VENDOR = "vendor", "Vendor"
    OPERATOR = "operator", "Operator"
    VIEWER = "viewer", "Viewer"


class Action(models.TextChoices):
    JOB_CREATE = "job_create", "Create / cancel own job"
    JOB_VIEW = "job_view", "View jobs"
    NODE_MANAGE = "node_manage", "Register / edit nodes"
    NODE_COMMAND = "node_command", "Send remote commands to machines"
    TWIN_EDIT = "twin_edit", "Create / edit twins"
    SIMULATION_RUN = "simulation_run", "Run simulations"
    TELEMETRY_VIEW = "telemetry_view", "View telemetry"
    TELEMETRY_INGEST = "telemetry_ingest", "Ingest telemetry"
    TICKET_MANAGE = "ticket_manage", "Manage tickets"
    INVENTORY_MANAGE = "inventory_manage", "Manage material stock and purchase orders"
    ENERGY_MANAGE = "energy_manage", "Manage energy sources, tariffs and power caps"
    KPI_VIEW = "kpi_view", "View platform KPIs"
    MARKET_SELL = "market_sell", "List and sell on the marketplace"
    MARKET_BUY = "market_buy", "Buy on the marketplace"
    SYSTEM_ADMIN = "system_admin", "System config, users, roles"


class Scope(models.TextChoices):
    ALL = "all", "All"
    OWN = "own", "Own"
    OWN_ORG = "own_org", "Own organization"
    OWN_AND_SHARED = "own_and_shared", "Own and shared with them"
    OWN_NODES = "own_nodes", "On their own nodes"
    OPERATED = "operated", "On sites they operate"
    NODES_RUNNING_OWN_JOBS = "nodes_running_own_jobs", "Nodes running their jobs"
    ACCESSIBLE = "accessible", "On objects they may otherwise access"


R, A, S = Role, Action, Scope

MATRIX: dict[Action, dict[Role, Scope]] = {
    A.JOB_CREATE: {R.ADMIN: S.ALL, R.DESIGNER: S.OWN, R.ENGINEER: S.OWN},
    A.JOB_VIEW: {
        R.ADMIN: S.ALL,
        R.DESIGNER: S.OWN_ORG,
        R.ENGINEER: S.OWN_ORG,
        R.VENDOR: S.OWN_NODES,
        R.OPERATOR: S.OPERATED,
        R.VIEWER: S.OWN_ORG,
    },
    A.NODE_MANAGE: {R.ADMIN: S.ALL, R.VENDOR: S.OWN_NODES},
    # pause, resume, stop, setpoints through the node's gateway (what its device map allows)
    A.NODE_COMMAND: {R.ADMIN: S.ALL, R.VENDOR: S.OWN_NODES, R.OPERATOR: S.OPERATED},
    A.TWIN_EDIT: {
        R.ADMIN: S.ALL,
        R.DESIGNER: S.OWN_AND_SHARED,
        R.ENGINEER: S.OWN_AND_SHARED,
        R.VENDOR: S.OWN_NODES,
    },
    A.SIMULATION_RUN: {
        R.ADMIN: S.ALL,
        R.DESIGNER: S.ACCESSIBLE,
        R.ENGINEER: S.ACCESSIBLE,
        R.VENDOR: S.ACCESSIBLE,
    },
    A.TELEMETRY_VIEW: {
        R.ADMIN: S.ALL,
        R.DESIGNER: S.NODES_RUNNING_OWN_JOBS,
        R.ENGINEER: S.NODES_RUNNING_OWN_JOBS,
        R.VENDOR: S.OWN_NODES,
        R.OPERATOR: S.OPERATED,
        R.VIEWER: S.OWN_ORG,
    },
    # Only device credentials (edge gateways) ingest; no human role, not even admin.
    A.TELEMETRY_INGEST: {},
    A.TICKET_MANAGE: {R.ADMIN: S.ALL, R.VENDOR: S.OWN_NODES, R.OPERATOR: S.OPERATED},
    A.INVENTORY_MANAGE: {R.ADMIN: S.ALL, R.VENDOR: S.OWN_NODES, R.OPERATOR: S.OPERATED},
    A.ENERGY_MANAGE: {R.ADMIN: S.ALL, R.VENDOR: S.OWN_NODES, R.OPERATOR: S.OPERATED},
    A.KPI_VIEW: {R.ADMIN: S.ALL, R.ENGINEER: S.ALL, R.OPERATOR: S.OPERATED},
    # Sellers manage their organization's listings and sales; the admin column moderates every
    # listing and refunds any sale. Buying is for the organizations that make things.
    A.MARKET_SELL: {
        R.ADMIN: S.ALL,
        R.VENDOR: S.OWN_ORG,
        R.DESIGNER: S.OWN_ORG,
        R.ENGINEER: S.OWN_ORG,
    },
    A.MARKET_BUY: {R.VENDOR: S.OWN_ORG, R.DESIGNER: S.OWN_ORG, R.ENGINEER: S.OWN_ORG},
    A.SYSTEM_ADMIN: {R.ADMIN: S.ALL},
}

# Which portal each role may enter, and where it lands after login. Admins may enter all.
PORTALS: dict[str, frozenset[Role]] = {
    "designer": frozenset({R.ADMIN, R.DESIGNER, R.ENGINEER, R.VIEWER}),
    "vendor": frozenset({R.ADMIN, R.VENDOR}),
    "ops": frozenset({R.ADMIN, R.OPERATOR, R.ENGINEER}),
    # The engineer's own home: their organization's jobs, the machines making them, the
    # platform KPIs and the model registry; nothing in it reaches further than the matrix.
    "engineering": frozenset({R.ADMIN, R.ENGINEER}),
}
HOME_PORTAL: dict[Role, str] = {
    R.ADMIN: "ops",
    R.DESIGNER: "designer",
    R.ENGINEER: "engineering",
    R.VENDOR: "vendor",
    R.OPERATOR: "ops",
    R.VIEWER: "designer",
}
# Roles that may sign themselves up; the others are created by an admin.
SELF_SERVICE_ROLES = (R.DESIGNER, R.VENDOR)
# Roles that must use two-factor authentication (so must staff users of any role).
TWO_FACTOR_REQUIRED = frozenset({R.ADMIN})


def permission_codename(action: Action | str) -> str:
    return str(action)


def role_actions(role: Role | str) -> list[Action]:
    return [action for action, scopes in MATRIX.items() if Role(role) in scopes]


def scope_for(user: Any, action: Action) -> Scope | None:
    """How far `user` may perform `action`, or None when not at all."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    if user.is_superuser:
        # A superuser has the admin column of the matrix: everything a person may do, but
        # still no telemetry ingest (device credentials only).
        return MATRIX[action].get(Role.ADMIN)
    if not user.has_perm(f"users.{permission_codename(action)}"):
        return None
    return MATRIX[action].get(Role(user.role))


def user_can(user: Any, action: Action) -> bool:
    return scope_for(user, action) is not None


def portal_allows(user: Any, portal: str) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return user.is_superuser or Role(user.role) in PORTALS[portal]


def two_factor_required(user: Any) -> bool:
    return bool(user.is_staff or user.is_superuser or user.role in TWO_FACTOR_REQUIRED)

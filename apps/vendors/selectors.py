from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.shortcuts import get_object_or_404

from apps.users.models import Organization, User
from apps.users.roles import Action, Scope, scope_for
from apps.vendors.models import DeviceCredential, FabricationNode, NodeConfigProfile


def node_list(*, user: User) -> QuerySet[FabricationNode]:
    """Admins see the whole fleet; vendors their own nodes, operators the nodes at their sites;
    everyone else the catalog of approved, working nodes."""
    qs = FabricationNode.objects.select_related("vendor", "site")
    if scope_for(user, Action.NODE_MANAGE) == Scope.ALL:
        return qs
    mine = Q(vendor__memberships__user=user) | Q(site__memberships__user=user)
    catalog = Q(approval=FabricationNode.Approval.APPROVED) & ~Q(
        status=FabricationNode.Status.DECOMMISSIONED
    )
    return qs.filter(mine | catalog).distinct()


def nodes_in_scope(*, user: User, action: Action) -> QuerySet[FabricationNode]:
    """The nodes `user` may act on with `action`: all of them, their vendor companies' nodes
    (OWN_NODES) or the nodes at the operator sites they belong to (OPERATED); none otherwise."""
    scope = scope_for(user, action)
    qs = FabricationNode.objects.select_related("vendor", "site")
    if scope == Scope.ALL:
        return qs
    if scope == Scope.OWN_NODES:
        return qs.filter(pk__in=FabricationNode.objects.filter(vendor__memberships__user=user))
    if scope == Scope.OPERATED:
        return qs.filter(pk__in=FabricationNode.objects.filter(site__memberships__user=user))
    return qs.none()


def vendor_acting_for(*, user: User, chosen: Organization | None, what: str) -> Organization:
    """The vendor company a request acts for: the one it names, else the user's only one;
    ValidationError ("Say which vendor company {what}.") when that is not one company. Whether
    the user may act for it is the service's check."""
    if chosen is not None:
        return chosen
    vendors = list(vendor_organizations_for(user=user)[:2])
    if len(vendors) != 1:
        raise ValidationError({"vendor": f"Say which vendor company {what}."})
    return vendors[0]


def nodes_with_private_details(*, user: User) -> QuerySet[FabricationNode]:
    """The one rule for a node's private details (its approval comment, coordinates, software
    version, and who changed its status and why): admins see them for every node, members of the
    node's vendor company and the operators of its site for theirs. Anyone else who may see the
    node at all (node_list) gets its public fields only."""
    qs = FabricationNode.objects.all()
    if scope_for(user, Action.NODE_MANAGE) == Scope.ALL:
        return qs
    own = Q(vendor__memberships__user=user)
    if scope_for(user, Action.TICKET_MANAGE) == Scope.OPERATED:
        own |= Q(site__memberships__user=user)
    return qs.filter(pk__in=FabricationNode.objects.filter(own).values("pk"))


def node_shows_private_details(*, user: User, node: FabricationNode) -> bool:
    return nodes_with_private_details(user=user).filter(pk=node.pk).exists()


def node_list_with_private_flag(*, user: User) -> QuerySet[FabricationNode]:
    """node_list, each node annotated `private_details` (may `user` see them), in one query."""
    private = nodes_with_private_details(user=user).filter(pk=OuterRef("pk"))
    return node_list(user=user).annotate(private_details=Exists(private))


def node_get_for_user(*, user: User, pk: int) -> FabricationNode:
    """404, not 403, so ids don't leak."""
    return get_object_or_404(node_list(user=user), pk=pk)


def node_can_manage(*, user: User, node: FabricationNode) -> bool:
    scope = scope_for(user, Action.NODE_MANAGE)
    if scope == Scope.ALL:
        return True
    return scope == Scope.OWN_NODES and node.vendor.memberships.filter(user=user).exists()


def node_is_operated_by(*, user: User, node: FabricationNode) -> bool:
    return (
        scope_for(user, Action.TICKET_MANAGE) == Scope.OPERATED
        and node.site is not None
        and node.site.memberships.filter(user=user).exists()
    )


def vendor_organizations_for(*, user: User) -> QuerySet[Organization]:
    """The vendor companies `user` may register nodes for."""
    qs = Organization.objects.filter(kind=Organization.Kind.VENDOR)
    if scope_for(user, Action.NODE_MANAGE) == Scope.ALL:
        return qs
    if scope_for(user, Action.NODE_MANAGE) == Scope.OWN_NODES:
        return qs.filter(memberships__user=user)
    return qs.none()


def pending_node_list() -> QuerySet[FabricationNode]:
    return FabricationNode.objects.filter(approval=FabricationNode.Approval.PENDING).select_related(
        "vendor", "site", "registered_by"
    )


def node_config_current(*, node: FabricationNode) -> NodeConfigProfile | None:
    return node.configs.order_by("-version").first()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}/{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def config_diff(*, old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Changes between two config documents, one entry per leaf path (`spindle/max_rpm`)."""
    before, after = _flatten(old), _flatten(new)
    changes = []
    for path in sorted(before.keys() | after.keys()):
        if path not in after:
            changes.append({"path": path, "op": "removed", "old": before[path], "new": None})
        elif path not in before:
            changes.append({"path": path, "op": "added", "old": None, "new": after[path]})
        elif before[path] != after[path]:
            changes.append({"path": path, "op": "changed", "old": before[path], "new": after[path]})
    return changes


def credential_list(*, node: FabricationNode) -> QuerySet[DeviceCredential]:
    return node.device_credentials.select_related("created_by")

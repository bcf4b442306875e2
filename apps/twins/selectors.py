"""Who may see and edit which twin.

View: admins; the twin's owner; members of its organization; vendors of its node and operators of
the node's site; anyone it is shared with (guardian `view_digitaltwin` or `change_digitaltwin`,
directly or through a team). Edit: the role matrix's TWIN_EDIT scope: all (admin), own and shared
(designers, engineers: owner or shared for editing), own nodes (vendors: twins of their nodes,
their own, or shared for editing). Viewers and operators never edit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from guardian.shortcuts import get_objects_for_user

from apps.telemetry.models import TelemetryPoint
from apps.twins.models import DigitalTwin, MixRecipe, Simulation, TwinLock
from apps.users.models import User
from apps.users.roles import Action, Scope, scope_for
from apps.users.selectors import user_organization_ids
from apps.vendors.models import FabricationNode

VIEW = "twins.view_digitaltwin"
EDIT = "twins.change_digitaltwin"


def _shared(user: User, perms: list[str]) -> QuerySet[DigitalTwin]:
    return get_objects_for_user(
        user, perms, klass=DigitalTwin, any_perm=True, accept_global_perms=False
    )


def twin_list(*, user: User) -> QuerySet[DigitalTwin]:
    twins = DigitalTwin.objects.select_related("owner", "organization", "node")
    if not user.is_authenticated or not user.is_active:
        return twins.none()
    if scope_for(user, Action.TWIN_EDIT) == Scope.ALL:
        return twins
    visible = (
        Q(owner=user)
        | Q(organization__memberships__user=user)
        | Q(node__vendor__memberships__user=user)
        | Q(node__site__memberships__user=user)
        | Q(pk__in=_shared(user, [VIEW, EDIT]).values("pk"))
    )
    return twins.filter(visible).distinct()


def twin_get_for_user(*, user: User, pk: int) -> DigitalTwin:
    """404 for twins the caller may not see, so ids don't leak."""
    return get_object_or_404(twin_list(user=user), pk=pk)


def twin_can_edit(*, user: User, twin: DigitalTwin) -> bool:
    scope = scope_for(user, Action.TWIN_EDIT)
    if scope is None:
        return False
    if scope == Scope.ALL or twin.owner_id == user.pk:
        return True
    if _shared(user, [EDIT]).filter(pk=twin.pk).exists():
        return True
    return (
        scope == Scope.OWN_NODES
        and twin.node is not None
        and twin.node.vendor.memberships.filter(user=user).exists()
    )


def twin_can_manage(*, user: User, twin: DigitalTwin) -> bool:
    """Share, upload a model, delete: the owner or an admin."""
    return scope_for(user, Action.TWIN_EDIT) == Scope.ALL or (
        twin.owner_id == user.pk and scope_for(user, Action.TWIN_EDIT) is not None
    )


def lock_list(*, twin: DigitalTwin, now: datetime) -> QuerySet[TwinLock]:
    """The twin's live locks (not released, not expired)."""
    return (
        TwinLock.objects.filter(twin=twin, released_at__isnull=True, expires_at__gt=now)
        .select_related("holder")
        .order_by("path", "acquired_at")
    )


# The readings a physics scenario starts from, and the Seed fields they fill.
SEED_SIGNALS = {
    "temperature_c": "temperature_c",
    "vibration_mm_s": "vibration_mm_s",
    "power_kw": "power_kw",
    "spindle_rpm": "spindle_rpm",
}


def node_latest_readings(
    *, node: FabricationNode, within: timedelta = timedelta(days=7)
) -> dict[str, dict[str, Any]]:
    """The newest value of each seed signal the node reported within `within`:
    {seed field: {"value": float, "time": datetime}}; signals it never reported are absent."""
    since = timezone.now() - within
    readings: dict[str, dict[str, Any]] = {}
    for field, signal in SEED_SIGNALS.items():
        row = (
            TelemetryPoint.objects.filter(
                node=node, time__gte=since, **{f"{signal}__isnull": False}
            )
            .order_by("-time")
            .values_list(signal, "time")
            .first()
        )
        if row is not None:
            readings[field] = {"value": float(row[0]), "time": row[1]}
    return readings


def simulation_list(*, twin: DigitalTwin) -> QuerySet[Simulation]:
    """A twin's simulations, newest first (callers have checked the twin is visible)."""
    return Simulation.objects.filter(twin=twin).select_related("created_by")


def recipe_list(*, user: User) -> QuerySet[MixRecipe]:
    """Mixing recipes of the caller's organizations (all of them for admins)."""
    recipes = MixRecipe.objects.select_related("author", "organization")
    if not user.is_authenticated or not user.is_active:
        return recipes.none()
    if scope_for(user, Action.TWIN_EDIT) == Scope.ALL:
        return recipes
    return recipes.filter(organization_id__in=user_organization_ids(user=user))
